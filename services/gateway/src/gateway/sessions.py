"""Sessions issued by the gateway once accounts has checked the credentials.

A session token is signed (itsdangerous, the gateway's secret key) and carries the user id and the token
version it was issued with; every use re-reads the identity from accounts, so "log out everywhere" (a
version bump) and role changes take effect at once. The public API takes it as `Authorization: Bearer`.
"""

import uuid
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request

from gateway.upstream import Upstream
from servicekit.http import ProblemError

SESSION_LIFETIME = timedelta(hours=8)


class Sessions:
    def __init__(self, secret: str, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="visiopass.session")
        self.lifetime = lifetime

    def issue(self, user_id: uuid.UUID, token_version: int) -> str:
        return self.serializer.dumps({"sub": str(user_id), "ver": token_version})

    def read(self, token: str) -> tuple[uuid.UUID, int] | None:
        try:
            claims = self.serializer.loads(token, max_age=int(self.lifetime.total_seconds()))
            return uuid.UUID(claims["sub"]), int(claims["ver"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


async def current_identity(request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions) -> dict[str, Any]:
    """The caller's identity, fresh from accounts; 401 without a valid, current session."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    claims = sessions.read(token) if scheme.lower() == "bearer" and token else None
    if claims is None:
        raise ProblemError(401, "unauthenticated", "Authentication required", "Log in to get a session token.")
    user_id, version = claims
    response = await accounts.call("GET", f"/internal/users/{user_id}")
    identity: dict[str, Any] = response.json() if response.status_code == 200 else {}
    if identity.get("token_version") != version:
        raise ProblemError(401, "session_expired", "Session expired", "This session has ended; log in again.")
    return identity
