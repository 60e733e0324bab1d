"""The gateway's part of the security event log (servicekit.logs.security_event): it decides the client's
address for every request, so that the services' events carry it, and logs what it refuses itself (forms
without a valid CSRF token, bearer tokens that are forged or whose session ended)."""

from typing import Any

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException

from gateway.source import client_address
from servicekit import context
from servicekit.http import problem_response
from servicekit.logs import security_event

CSRF_REFUSAL = "CSRF token verification failed"  # Litestar's CSRF middleware's words


async def remember_client(request: Request[Any, Any, Any]) -> None:
    """`before_request`: the client's address for this request, sent on to the services (Upstream.call)."""
    context.client_address.set(client_address(request))


def refused(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[dict[str, Any]]:
    """A 403 the gateway itself answers; a CSRF refusal is a security event."""
    if exc.detail == CSRF_REFUSAL:
        security_event(
            "csrf_refused",
            outcome="refused",
            source=client_address(request),
            method=request.method,
            path=request.url.path,
        )
    return problem_response(request, exc)
