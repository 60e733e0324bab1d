"""Sessions, kept by accounts, and the tokens that carry them.

A session token is signed (itsdangerous, the gateway's secret key) and carries the id of a session that
accounts opened on login; the identity behind it is read from accounts and kept at most
`identity_cache_seconds` (gateway.identities), and forgotten at once after any change this gateway sends to
accounts, so logging out (this session or everywhere), a password change, a removal and role changes take
effect at once through this process and within that delay through any other. The public API takes it as
`Authorization: Bearer`.
"""

import uuid
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request

from gateway.identities import IdentityCache
from gateway.source import client_address
from gateway.upstream import Upstream
from servicekit.http import ProblemError
from servicekit.logs import security_event

SESSION_LIFETIME = timedelta(hours=8)


class Sessions:
    def __init__(self, secret: str, lifetime: timedelta = SESSION_LIFETIME, identity_ttl: float = 0.5) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="visiopass.session")
        self.lifetime = lifetime
        self.identities = IdentityCache(identity_ttl)  # session id -> identity dict, or None for an ended session

    def issue(self, session_id: uuid.UUID) -> str:
        return self.serializer.dumps({"sid": str(session_id)})

    def read(self, token: str) -> uuid.UUID | None:
        try:
            claims = self.serializer.loads(token, max_age=int(self.lifetime.total_seconds()))
            return uuid.UUID(claims["sid"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


async def current_identity(request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions) -> dict[str, Any]:
    """The caller's identity, from accounts (at most `identity_ttl` old), with its `session_id`; 401 without an
    open session."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    session_id = sessions.read(token) if scheme.lower() == "bearer" and token else None
    if session_id is None:
        if token:  # a token was presented, but forged, damaged or too old: not merely a missing header
            security_event(
                "session_token_refused", outcome="refused", source=client_address(request), path=request.url.path
            )
        raise ProblemError(401, "unauthenticated", "Authentication required", "Log in to get a session token.")
    identity = await sessions.identities.get(session_id, lambda: read_identity(accounts, session_id))
    if identity is None:
        security_event("session_refused", outcome="ended", source=client_address(request), path=request.url.path)
        raise ProblemError(401, "session_expired", "Session expired", "This session has ended; log in again.")
    return {**identity, "session_id": str(session_id)}


async def read_identity(accounts: Upstream, session_id: uuid.UUID) -> dict[str, Any] | None:
    """The identity behind an open session, None when it has ended (for good: a session never reopens)."""
    response = await accounts.call("GET", f"/internal/sessions/{session_id}")
    if response.status_code >= 500:
        raise ProblemError(502, "upstream_error", "Service error", "An internal service failed; try again later.")
    if response.status_code != 200:
        return None
    identity: dict[str, Any] = response.json()
    return identity
