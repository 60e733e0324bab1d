"""The public API's OpenAPI document and its page.

- The bearer schemes are declared once: `BearerToken` (the session token of `POST /api/v1/sessions`), listed by
  each route that needs a session (`security=BEARER`), and `ApiToken` (a personal API token), listed beside it
  by the routes a token may call too (`security=SESSION_OR_API_TOKEN`, which also lets the token through).
- Each route lists the problem answers (RFC 9457, `application/problem+json`, schema `ProblemDetails`) it can
  give with `responses=problems(...)`; every route can answer 400 (input refused at the edge), 502 and 503 (an
  internal service failed or did not answer).
- The page at `/schema` is Swagger UI, whose scripts and style sheet the gateway serves itself from the
  `swagger-ui-py` package (`/schema/assets/...`): nothing is loaded from another origin, and it works offline.
  Its start-up script is a file too (`swagger-init.js`): the Content-Security-Policy allows no inline script.
"""

import html
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, OpenAPIResponse, SecurityScheme
from pydantic import BaseModel, ConfigDict, Field

BEARER_SCHEME = "BearerToken"
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
"""`security=` of the routes that need a person's session."""
API_TOKEN_SCHEME = "ApiToken"  # noqa: S105 (a scheme's name)
SESSION_OR_API_TOKEN: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}, {API_TOKEN_SCHEME: []}]
"""`security=` of the routes that a personal API token may call as well as a session: from this one mark the
document says so and `gateway.sessions.api_identity` lets the token through. Any other route answers a token
`403 session_required`."""


def accepts_api_token(handler: Any) -> bool:
    """Whether the route handler lists the API token scheme in its `security`."""
    return any(API_TOKEN_SCHEME in requirement for requirement in handler.resolve_security())


ASSETS_PATH = "/schema/assets"
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
ASSETS_CACHE_CONTROL = "public, max-age=86400"  # the files change only with the package's version
# Swagger UI's start-up, served as a file: the Content-Security-Policy (gateway.headers) refuses inline scripts.
SWAGGER_INIT = "swagger-init.js"
SWAGGER_INIT_JS = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-container",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""


class ProblemDetails(BaseModel):
    """A refusal, as every Visiopass service answers it (RFC 9457)."""

    model_config = ConfigDict(extra="allow", title="ProblemDetails")

    type: str = Field(description="urn:visiopass:problem:<code>")
    title: str
    status: int
    code: str = Field(description="stable and machine-readable, e.g. email_taken, name_invalid, not_found")
    detail: str | None = Field(None, description="English prose for the person")
    instance: str | None = Field(None, description="the path of the request, when the gateway itself answered")
    field: str | None = Field(None, description="the input field refused, when one is")
    retry_after: int | None = Field(None, description="seconds to wait (429), also in the Retry-After header")
    errors: list[dict[str, Any]] | None = Field(None, description="the fields refused by the request's schema")


PROBLEMS: dict[int, str] = {
    400: "Input refused: `code` says which rule, `field` which field",
    401: "No valid session token (`unauthenticated`, `session_expired`) or API token (`token_invalid`), or "
    "wrong credentials at login",
    403: "Not allowed to the caller (e.g. not a manager of the account, wrong password); to an API token, "
    "`session_required` (the route needs a person's session) or `token_scope` (a `read` token may only GET)",
    404: "Not found, or not visible to the caller",
    409: "In conflict with the current state (e.g. email taken, account closed, last manager)",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Well-formed but refused by a rule of the service (e.g. a file that is not a PDF, a public buyer without "
    "its service code)",
    429: "Too many requests: wait `retry_after` seconds (also sent as the Retry-After header)",
    502: "An internal service failed",
    503: "An internal service did not answer",
}
ALWAYS = (400, 502, 503)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The `responses=` of a route: the problem answers it gives besides those of every route (ALWAYS)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type="application/problem+json",
            description=PROBLEMS[status],
            generate_examples=False,
        )
        for status in sorted({*ALWAYS, *statuses})
    }


def without_bodies_on_204(document: OpenAPI) -> OpenAPI:
    """A 204 has no body (RFC 9110), but Litestar documents one (JSON `null`) for a route that returns
    `Response[None]`, as those that relay a service's answer do: the document says no content instead, so that
    clients and schema checks expect none."""
    for item in (document.paths or {}).values():
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is not None and operation.responses and "204" in operation.responses:
                answer = operation.responses["204"]
                if isinstance(answer, OpenAPIResponse):
                    answer.content = None
    return document


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def swagger_asset(name: str) -> Response[bytes]:
    """Swagger UI's files, from the package that ships them; cached a day by browsers."""
    if name == SWAGGER_INIT:
        return Response(SWAGGER_INIT_JS, media_type="text/javascript", headers={"Cache-Control": ASSETS_CACHE_CONTROL})
    if name not in ASSETS or PurePosixPath(name).name != name:
        raise NotFoundException()
    content = resources.files("swagger_ui").joinpath("static", name).read_bytes()
    return Response(content, media_type=ASSETS[name], headers={"Cache-Control": ASSETS_CACHE_CONTROL})


class SwaggerPage(SwaggerRenderPlugin):
    """Litestar's Swagger UI page without its inline script and style: the page loads `swagger-init.js`, which
    fetches the document from `/schema/openapi.json`."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        return (
            "<!DOCTYPE html><html><head>"
            f"<title>{title}</title>{self.favicon}"
            '<meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link href="{self.css_url}" rel="stylesheet">'
            f'<script src="{self.js_url}"></script>'
            f'<script src="{self.standalone_preset_js_url}"></script>'
            f'<script src="{ASSETS_PATH}/{SWAGGER_INIT}"></script>'
            "</head><body><div id='swagger-container'></div></body></html>"
        ).encode()


def openapi_config(title: str) -> OpenAPIConfig:
    swagger = SwaggerPage(
        path="/",
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title=title,
        version="1.0.0",
        description="Refusals are problem details (RFC 9457, `application/problem+json`) with a stable `code`. "
        "Routes marked with a lock need `Authorization: Bearer <token>`, the token of `POST /api/v1/sessions`; "
        "those that also list ApiToken take a personal API token (`vpat_...`) the same way.",
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="The session token of `POST /api/v1/sessions` (valid 8 hours).",
                ),
                API_TOKEN_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="vpat_<id>_<secret>",
                    description="A personal API token (`POST /api/v1/accounts/{account_id}/api-tokens`, made by "
                    "a manager): acts as that manager on that account only, until revoked or expired; a `read` "
                    "token may only GET. Routes that list only BearerToken refuse it (403 `session_required`).",
                ),
            }
        ),
        render_plugins=[swagger, JsonRenderPlugin()],
    )
