"""What every service's HTTP side has: correlation ids, health, metrics, problem details."""

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import context

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name)

ReadinessCheck = Callable[[], Awaitable[None]]
log = logging.getLogger(__name__)
_CORRELATION_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,100}")
_CLIENT_ADDRESS = re.compile(rb"[0-9A-Fa-f.:]{1,45}")  # an IPv4 or IPv6 address, nothing else


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    """Takes X-Correlation-ID from the request (or mints one) and echoes it on the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(context.CORRELATION_HEADER.lower().encode())
        # only a plain token is carried on (logs, events, upstream headers); anything else gets a new id
        usable = incoming is not None and _CORRELATION_ID.fullmatch(incoming) is not None
        context.correlation_id.set(incoming.decode("ascii") if usable and incoming else None)
        correlation = context.current_correlation_id()
        # Internal APIs (behind the internal token) take the client's address from the gateway; a public
        # app sets its own from the connection (the gateway: gateway.source).
        address = dict(scope["headers"]).get(context.CLIENT_ADDRESS_HEADER.lower().encode())
        internal = scope["path"].startswith("/internal/")
        usable_address = internal and address is not None and _CLIENT_ADDRESS.fullmatch(address) is not None
        context.client_address.set(address.decode("ascii") if usable_address and address else None)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[context.CORRELATION_HEADER] = correlation
            await send(message)

        await app(scope, receive, send_with_header)

    return middleware


def allow_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar's own answer to OPTIONS names, in `Allow`, only the methods of the handlers registered with it
    first: a path whose handlers come from several registrations (GET and PATCH of one path) would answer an
    incomplete list. This names every method of the route."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and (methods := _route_methods(scope)):
                headers = MutableScopeHeaders.from_message(message)
                if "allow" in headers:
                    headers["Allow"] = ", ".join(sorted(methods))
            await send(message)

        await app(scope, receive, send_with_allow)

    return middleware


def _route_methods(scope: Scope) -> set[str]:
    handler = scope.get("route_handler")
    routes = scope["litestar_app"].routes
    return {m for route in routes if handler in getattr(route, "route_handlers", ()) for m in route.methods}


def internal_token_guard(
    expected: str | None,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """Internal APIs answer only callers presenting the shared token (when one is configured). A coroutine: Litestar
    would run a plain function in its thread pool, a thread hop per request that costs more than the check."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if expected is None or not connection.url.path.startswith("/internal/"):
            return
        presented = connection.headers.get(INTERNAL_TOKEN_HEADER, "")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ProblemError(401, "internal_token_required", "Internal API", "A valid internal token is required.")

    return guard


class ProblemError(HTTPException):
    """An RFC 9457 problem with a stable machine-readable code."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(status_code=status, detail=detail or title)
        self.code = code
        self.title = title
        self.members = extra


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    # The exception's headers go out with the problem: Allow on a 405 (Litestar names the route's methods).
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if isinstance(exc, ProblemError):
        status, code, title, detail = exc.status_code, exc.code, exc.title, exc.detail
        extra = exc.members
    elif isinstance(exc, HTTPException):
        status, code, title, detail = exc.status_code, _code_for(exc.status_code), exc.detail, exc.detail
        if exc.extra:
            extra = {"errors": exc.extra}
            # a request refused by its types (servicekit.inputs): `field` names the first field at fault
            keys = (
                [e["key"] for e in exc.extra if isinstance(e, dict) and e.get("key")]
                if isinstance(exc.extra, list)
                else []
            )
            if keys:
                extra["field"] = keys[0]
    else:
        # our logger, formatted by servicekit.logs (a database error by its kind, never its values); not
        # request.logger, which Litestar hands its own plain handler
        log.exception("unhandled error")
        status, code, title, detail = HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Internal error", ""
    body: dict[str, Any] = {"type": f"urn:visiopass:problem:{code}", "title": title, "status": status, "code": code}
    if detail and detail != title:
        body["detail"] = detail
    body.update(extra)
    body["instance"] = request.url.path
    return Response(body, status_code=status, media_type="application/problem+json", headers=headers)


def _code_for(status: int) -> str:
    return {
        400: "invalid_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        429: "rate_limited",
    }.get(status, f"http_{status}")


class ServiceMetrics(PrometheusController):
    path = "/metrics"


def health_routes(checks: dict[str, ReadinessCheck], *, metrics: bool = True) -> list[Any]:
    """`metrics`: serve `/metrics` here too (every internal service); the gateway serves it on an internal port."""

    @get("/health/live", sync_to_thread=False, include_in_schema=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        healthy = all(v == "ok" for v in results.values())
        return Response(
            {"status": "ok" if healthy else "unavailable", "checks": results},
            status_code=200 if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )

    return [live, ready, ServiceMetrics] if metrics else [live, ready]


def prometheus_config(service: str) -> PrometheusConfig:
    return PrometheusConfig(
        app_name=service.replace("-", "_"), prefix="http", group_path=True, exclude=["/metrics", "/health"]
    )


__all__ = [
    "Litestar",
    "ProblemError",
    "correlation_middleware",
    "health_routes",
    "problem_response",
    "prometheus_config",
]
