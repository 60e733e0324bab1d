"""Sessions, kept by accounts, and the tokens that carry them.

A session token is signed (itsdangerous, the gateway's secret key) and carries the id of a session that
accounts opened on login; the identity behind it is read from accounts and kept at most
`identity_cache_seconds` (gateway.identities), and forgotten at once after any change this gateway sends to
accounts, so logging out (this session or everywhere), a password change, a removal and role changes take
effect at once through this process and within that delay through any other. The public API takes it as
`Authorization: Bearer`, as it takes a personal API token (`vpat_...`, made and kept by accounts) on the routes
that allow one (`api_identity`).
"""

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request

from gateway.identities import IdentityCache
from gateway.openapi import accepts_api_token
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
    open session. A personal API token (`vpat_...`) is taken instead where the route allows it (api_identity)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.startswith(API_TOKEN_PREFIX):
        return await api_identity(request, accounts, sessions, token)
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


API_TOKEN_PREFIX = "vpat_"  # noqa: S105 (the tokens' mark, not one)


async def api_identity(
    request: Request[Any, Any, Any], accounts: Upstream, sessions: Sessions, token: str
) -> dict[str, Any]:
    """The identity a personal API token acts with (its creator, as manager of its one account), kept like a
    session's. It is kept under the token's hash, not its id alone: a wrong secret with a right id must not be
    answered from what the right secret read. Then what a token may do, decided here for every route:
    - only routes marked `security=SESSION_OR_API_TOKEN` (gateway.openapi) take one; any other answers 403
      `session_required` (tokens, passwords, addresses, logging out, closing, organisers need a person);
    - only on its own account: another `account_id` in the path is 404, as for anyone not of that account;
    - a `read` token only reads (GET, HEAD): 403 `token_scope` otherwise."""
    key = ("api_token", hashlib.sha256(token.encode()).digest())
    identity = await sessions.identities.get(key, lambda: read_token_identity(accounts, token))
    where = {"source": client_address(request), "path": request.url.path}
    if identity is None:
        security_event("api_token_refused", outcome="invalid", **where)
        raise ProblemError(
            401,
            "token_invalid",
            "Invalid API token",
            "This API token is unknown, revoked or expired, or no longer acts for a manager of its account.",
        )
    who = {"user_id": identity["user_id"], "credential_id": identity["token_id"], **where}
    if not accepts_api_token(request.route_handler):
        security_event("api_token_refused", outcome="session_required", **who)
        raise ProblemError(
            403, "session_required", "A person's session is required", "An API token cannot do this: log in."
        )
    account_id = request.path_params.get("account_id")
    if account_id is not None and str(account_id) != identity["account_id"]:
        security_event("access_denied", outcome="not_found", account_id=account_id, **who)
        raise ProblemError(404, "not_found", "Not found")
    if identity["scope"] == "read" and request.method not in ("GET", "HEAD"):
        security_event("api_token_refused", outcome="token_scope", account_id=account_id, **who)
        raise ProblemError(
            403, "token_scope", "Read-only API token", "This token may only read: use a read_write token to change."
        )
    return identity


async def read_token_identity(accounts: Upstream, token: str) -> dict[str, Any] | None:
    """The identity behind a personal API token, None when it does not work. The token goes in a header, never
    in the URL (which access logs keep); a GET, so that reading it does not clear the identity cache."""
    response = await accounts.call("GET", "/internal/api-tokens/identity", headers={"X-Api-Token": token})
    if response.status_code >= 500:
        raise ProblemError(502, "upstream_error", "Service error", "An internal service failed; try again later.")
    if response.status_code != 200:
        return None
    identity: dict[str, Any] = response.json()
    return identity
