"""The public API's OpenAPI document and page, and the answers Litestar gives before any route runs. The
gateway app alone: nothing here reaches accounts."""

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from gateway.api import ensure_manager
from gateway.main import app
from gateway.openapi import API_TOKEN_SCHEME, BEARER_SCHEME
from servicekit.http import ProblemError

PROBLEM = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Any]]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def spec(client: TestClient[Any]) -> dict[str, Any]:
    answer = client.get("/schema/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def api_operations() -> Iterator[tuple[str, str, HTTPRouteHandler]]:
    """(OpenAPI path, method, handler) of every public API route."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue  # Litestar's OPTIONS answers
            for method in handler.http_methods:
                yield path, method.lower(), handler


def test_the_bearer_scheme_is_declared(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_every_route_that_needs_a_session_lists_the_scheme_and_no_other_does(spec: dict[str, Any]) -> None:
    operations = list(api_operations())
    assert len(operations) >= 25
    for path, method, handler in operations:
        operation = spec["paths"][path][method]
        authenticated = "identity" in handler.parsed_fn_signature.parameters
        schemes = [name for requirement in operation.get("security", []) for name in requirement]
        assert (BEARER_SCHEME in schemes) == authenticated, f"{method} {path}"
        assert set(schemes) <= {BEARER_SCHEME, API_TOKEN_SCHEME}, f"{method} {path}"
        assert ("401" in operation["responses"]) >= authenticated, f"{method} {path} does not document 401"


def test_every_route_documents_its_problem_answers_as_problem_details(spec: dict[str, Any]) -> None:
    for path, method, _ in api_operations():
        responses = spec["paths"][path][method]["responses"]
        for status in ("400", "502", "503"):
            assert status in responses, f"{method} {path} does not document {status}"
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {"application/problem+json": PROBLEM}, f"{method} {path} {status}"
                assert response["description"]
    problem = spec["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "code"} <= set(problem["required"])


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/accounts", "post", {"409", "413", "429"}),
        ("/api/v1/sessions", "post", {"401", "429"}),
        ("/api/v1/accounts/{account_id}/members/import", "post", {"401", "403", "404", "413", "429"}),
        ("/api/v1/accounts/{account_id}/members/{member_id}", "delete", {"401", "403", "404", "409"}),
        ("/api/v1/accounts/{account_id}/profile", "patch", {"401", "403", "404", "409"}),
    ],
)
def test_routes_document_the_refusals_of_accounts(
    spec: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert statuses <= set(spec["paths"][path][method]["responses"])


def test_the_schema_page_loads_only_same_origin_assets_which_the_gateway_serves(client: TestClient[Any]) -> None:
    page = client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page.text)
    assert {"css", "js"} <= {reference.rsplit(".", 1)[-1] for reference in references}
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert "max-age=" in asset.headers["cache-control"], reference
        kind = {"css": "text/css", "js": "text/javascript", "png": "image/png"}[reference.rsplit(".", 1)[-1]]
        assert asset.headers["content-type"].startswith(kind), reference
    head = page.text.split("<body", 1)[0]
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr|googleapis", head, re.IGNORECASE)


@pytest.mark.parametrize("name", ["index.css", "..%2Fcore.py", "swagger-editor.js", "nothing.js"])
def test_only_the_pages_assets_are_served(client: TestClient[Any], name: str) -> None:
    assert client.get(f"/schema/assets/{name}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/sessions", {"POST"}),
        ("GET", "/api/v1/sessions/current", {"DELETE"}),
        ("DELETE", "/api/v1/me", {"GET", "PATCH"}),
        ("POST", f"/api/v1/accounts/{uuid.uuid4()}/profile", {"GET", "PATCH"}),
        ("PATCH", "/api/v1/member-import-template", {"GET"}),
    ],
)
def test_a_wrong_method_is_a_405_problem_naming_the_allowed_methods(
    client: TestClient[Any], method: str, path: str, allowed: set[str]
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in answer.headers["allow"].split(",")}
    assert method not in answer.headers["allow"]


def test_a_csv_import_is_refused_before_its_file_is_read_to_whoever_does_not_manage_the_account() -> None:
    account, other = uuid.uuid4(), uuid.uuid4()

    def refusal(identity: dict[str, Any]) -> tuple[int, str] | None:
        try:
            ensure_manager(identity, account)
        except ProblemError as exc:
            return exc.status_code, exc.code
        return None

    assert refusal({"memberships": {str(account): "manager"}, "is_organiser": False}) is None
    assert refusal({"memberships": {str(account): "member"}, "is_organiser": False}) == (403, "forbidden")
    assert refusal({"memberships": {}, "is_organiser": True}) == (403, "forbidden")
    assert refusal({"memberships": {str(other): "manager"}, "is_organiser": False}) == (404, "not_found")


def test_a_csv_import_without_a_session_is_refused_before_its_file_is_read(client: TestClient[Any]) -> None:
    answer = client.post(
        f"/api/v1/accounts/{uuid.uuid4()}/members/import", content=b"\x00" * 1000, headers={"Content-Type": "text/csv"}
    )
    assert (answer.status_code, answer.json()["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"/api/v1/accounts/{uuid.uuid4()}/profile", {"GET", "PATCH", "OPTIONS"}),
        ("/api/v1/me", {"GET", "PATCH", "OPTIONS"}),
        (f"/api/v1/accounts/{uuid.uuid4()}/members/{uuid.uuid4()}", {"PATCH", "DELETE", "OPTIONS"}),
        ("/api/v1/sessions", {"POST", "OPTIONS"}),
    ],
)
def test_options_names_every_method_of_the_path(client: TestClient[Any], path: str, allowed: set[str]) -> None:
    answer = client.options(path)
    assert answer.status_code == 204
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed
