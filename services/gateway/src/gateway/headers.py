"""Security headers on every answer of the gateway, and its metrics on an internal listener.

`security_headers` is a Litestar `before_send` hook: it sees every response start, the routes' answers as well
as those Litestar gives before any route runs (404, 405, 400 problems), and adds:

- `Content-Security-Policy` (CSP): everything from the gateway's own origin only; scripts only from files
  (`script-src 'self'`, never `unsafe-inline` nor `unsafe-eval`: the Swagger UI page loads its start-up script
  from `/schema/assets/swagger-init.js`); styles only from files too (the portal's `static/portal.css`), except
  on the Swagger UI pages under `/schema`, whose scripts set inline styles; `frame-ancestors 'none'`,
  `form-action 'self'` (and the payment provider's page: `GATEWAY_FORM_ACTION_ORIGINS`), `base-uri 'none'`,
  `object-src 'none'`;
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (mailed links carry tokens in the URL),
  `X-Frame-Options: DENY` (frame-ancestors for older browsers), `Cross-Origin-Opener-Policy: same-origin`;
- `Cache-Control: no-store` on every `/api/` answer, and on every other answer that does not set its own
  (pages, shown to logged-in people, and errors); static assets keep theirs (e.g. Swagger UI's files);
- `Strict-Transport-Security` when `GATEWAY_HSTS_SECONDS` > 0 (behind TLS; 0, the default, sends none).

`/metrics` is not served on the public port: `start_metrics_listener` serves the process's Prometheus registry
on `GATEWAY_METRICS_HOST:GATEWAY_METRICS_PORT` (127.0.0.1:8100 by default), which operators scrape.
"""

from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from prometheus_client import REGISTRY, start_http_server

if TYPE_CHECKING:
    from litestar.types import BeforeMessageSendHookHandler, Message, Scope


def _policy(style_src: str, form_action_origins: tuple[str, ...] = ()) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {style_src}",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            " ".join(["form-action 'self'", *form_action_origins]),
            "frame-ancestors 'none'",
        ]
    )


NO_STORE = "no-store"


def security_headers(hsts_seconds: int, form_action_origins: tuple[str, ...] = ()) -> "BeforeMessageSendHookHandler":
    fixed = {
        "Content-Security-Policy": _policy("'self'", form_action_origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    swagger_policy = _policy("'self' 'unsafe-inline'", form_action_origins)  # Swagger UI styles elements inline
    if hsts_seconds > 0:
        fixed["Strict-Transport-Security"] = f"max-age={hsts_seconds}; includeSubDomains"

    async def add_headers(message: "Message", scope: "Scope") -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in fixed.items():
            headers[name] = value
        path = scope.get("path", "")
        if path == "/schema" or path.startswith("/schema/"):
            headers["Content-Security-Policy"] = swagger_policy
        if path.startswith("/api/") or "cache-control" not in headers:
            headers["Cache-Control"] = NO_STORE

    return add_headers


def start_metrics_listener(host: str, port: int) -> None:
    """The Prometheus registry on its own port (a daemon thread); 0 serves none."""
    if port:
        start_http_server(port, addr=host, registry=REGISTRY)
