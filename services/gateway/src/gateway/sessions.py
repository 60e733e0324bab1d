"""Sessions, kept by accounts, and the tokens that carry them.

A session token is signed (itsdangerous, the gateway's secret key) and carries the id of a session that
accounts opened on login; every use asks accounts for the identity behind it, so logging out (this
session or everywhere), a password change and role changes take effect at once. The public API takes it as
`Authorization: Bearer`.
"""

import uuid
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request

from gateway.source import client_address
from gateway.upstream import Upstream
from servicekit.http import ProblemError
from servicekit.logs import security_event

SESSION_LIFETIME = timedelta(hours=8)


class Sessions:
    def __init__(self, secret: str, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="visiopass.session")
        self.lifetime = lifetime

    def issue(self, session_id: uuid.UUID) -> str:
        return self.serializer.dumps({"sid": str(session_id)})

    def read(self, token: str) -> uuid.UUID | None:
        try:
            claims = self.serializer.loads(token, max_age=int(self.lifetime.total_seconds()))
            return uuid.UUID(claims["sid"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


async def current_identity(request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions) -> dict[str, Any]:
    """The caller's identity, fresh from accounts, with its `session_id`; 401 without an open session."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    session_id = sessions.read(token) if scheme.lower() == "bearer" and token else None
    if session_id is None:
        if token:  # a token was presented, but forged, damaged or too old: not merely a missing header
            security_event(
                "session_token_refused", outcome="refused", source=client_address(request), path=request.url.path
            )
        raise ProblemError(401, "unauthenticated", "Authentication required", "Log in to get a session token.")
    response = await accounts.call("GET", f"/internal/sessions/{session_id}")
    if response.status_code >= 500:
        raise ProblemError(502, "upstream_error", "Service error", "An internal service failed; try again later.")
    if response.status_code != 200:
        security_event("session_refused", outcome="ended", source=client_address(request), path=request.url.path)
        raise ProblemError(401, "session_expired", "Session expired", "This session has ended; log in again.")
    identity: dict[str, Any] = response.json()
    return {**identity, "session_id": str(session_id)}
