"""Personal API tokens: a manager lets a program act on the institution's account as them, without a password.

A token is `vpat_<id>_<secret>`: the id (32 hex digits) finds its row, and the secret (32 random bytes,
base64url) proves it. Only the sha256 of the secret is stored, compared in constant time; a slow hash (argon2)
would buy nothing against 256 random bits and would cost every API call. The token is shown once, when made.

A token works while all of these hold, checked on every identity read (`token_identity`):
- it is not revoked and not expired;
- its account is open;
- the manager who made it is still one of the account's managers (the token acts as them; demoting or
  removing them also revokes their tokens, so that making them a manager again does not revive old ones).

What it may do is the gateway's to enforce (gateway.sessions): only the routes that accept tokens, only on
its own account, GET and HEAD only for a `read` token. The identity it gives therefore names that one account
(as manager) and no organiser role, whatever else its creator is.

No event is written: accounts writes events for what another service must act on (mails, anonymising), and
a role change is not one either; who made or revoked which token is in the security log (`api_token_*`).
"""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import ACCEPTED, Actor, managed_institution, readable_institution
from accounts.credentials import Identity, identity_of
from accounts.errors import AccountsError, Forbidden, NotFound, valid_name
from accounts.models import api_tokens, institutions, memberships
from servicekit.logs import security_event

Scope = Literal["read", "read_write"]
PREFIX = "vpat_"
_FORMAT = re.compile(r"vpat_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")
MAX_LIVE_TOKENS = 20  # per account: tokens neither revoked nor expired
LAST_USE_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


class TokenLimit(AccountsError):
    status, code, title = 409, "token_limit", "Too many API tokens"
    detail = f"An account has at most {MAX_LIVE_TOKENS} API tokens in use: revoke one first."


@dataclass(frozen=True, kw_only=True)
class TokenIdentity(Identity):
    """The creator's identity, restricted to the token's account (as its manager, no organiser role)."""

    token_id: uuid.UUID
    account_id: uuid.UUID
    scope: Scope


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[uuid.UUID, str] | None:
    """The id and secret of a well-formed token, or None."""
    match = _FORMAT.fullmatch(token)
    return (uuid.UUID(match[1]), match[2]) if match else None


def _shown(row: Any, now: datetime) -> dict[str, Any]:
    """A token as its managers see it: never the secret nor its hash."""
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "token_id": row.id,
        "name": row.name,
        "scope": row.scope,
        "prefix": row.prefix,
        "status": status,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "expires_at": row.expires_at,
    }


def _live(now: datetime) -> Any:
    return and_(api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at.is_(None) | (api_tokens.c.expires_at > now))


async def create_token(
    session: AsyncSession,
    who: Actor,
    account_id: uuid.UUID,
    name: str,
    scope: Scope,
    now: datetime,
    *,
    lifetime: timedelta | None = None,
) -> dict[str, Any]:
    """A new token of the account, acting as `who` (a manager); the answer holds the token, once."""
    await managed_institution(session, who, account_id)  # locked: two creations cannot both pass the limit
    name = valid_name("name", name)
    live = await session.scalar(
        select(func.count()).where(api_tokens.c.institution_id == account_id, _live(now)).select_from(api_tokens)
    )
    if live >= MAX_LIVE_TOKENS:
        security_event("api_token_refused", outcome="token_limit", user_id=who.user_id, account_id=account_id)
        raise TokenLimit
    token_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    row = (
        await session.execute(
            insert(api_tokens)
            .values(
                id=token_id,
                institution_id=account_id,
                created_by=who.user_id,
                name=name,
                scope=scope,
                secret_hash=digest(secret),
                prefix=PREFIX + token_id.hex[:8],
                created_at=now,
                expires_at=None if lifetime is None else now + lifetime,
            )
            .returning(api_tokens)
        )
    ).one()
    security_event(
        "api_token_created", outcome=scope, user_id=who.user_id, account_id=account_id, credential_id=token_id
    )
    return _shown(row, now) | {"token": f"{PREFIX}{token_id.hex}_{secret}"}


async def list_tokens(session: AsyncSession, who: Actor, account_id: uuid.UUID, now: datetime) -> list[dict[str, Any]]:
    """The account's tokens that are not revoked (expired ones too, marked so), newest first; managers only."""
    await readable_institution(session, who, account_id)
    if not who.may_manage(account_id):
        raise Forbidden
    rows = await session.execute(
        select(api_tokens)
        .where(api_tokens.c.institution_id == account_id, api_tokens.c.revoked_at.is_(None))
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
    )
    return [_shown(row, now) for row in rows]


async def revoke_token(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, token_id: uuid.UUID, now: datetime
) -> None:
    """Revoke one of the account's tokens (any manager may, not only its creator); revoking twice is no error."""
    await managed_institution(session, who, account_id)
    revoked = await session.scalar(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.institution_id == account_id)
        .values(
            revoked_at=func.coalesce(api_tokens.c.revoked_at, now),
            revoked_by=func.coalesce(api_tokens.c.revoked_by, who.user_id),
        )
        .returning(api_tokens.c.id)
    )
    if revoked is None:
        raise NotFound
    security_event(
        "api_token_revoked", outcome="revoked", user_id=who.user_id, account_id=account_id, credential_id=token_id
    )


async def revoke_tokens_of(
    session: AsyncSession, who: Actor, account_id: uuid.UUID, creator: uuid.UUID, now: datetime
) -> None:
    """Revoke the tokens `creator` made for the account, as they stop managing it (demoted or removed)."""
    revoked = await session.execute(
        update(api_tokens)
        .where(
            api_tokens.c.institution_id == account_id,
            api_tokens.c.created_by == creator,
            api_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_by=who.user_id)
        .returning(api_tokens.c.id)
    )
    for (token_id,) in revoked:
        security_event(
            "api_token_revoked",
            outcome="creator_not_manager",
            user_id=who.user_id,
            account_id=account_id,
            target_user_id=creator,
            credential_id=token_id,
        )


async def revoke_every_token_of(session: AsyncSession, creator: uuid.UUID, now: datetime, reason: str) -> None:
    """Revoke every token `creator` made, in every account: their identity was taken over ("this was not me"),
    and a token made with a stolen session must not outlive the new password."""
    revoked = await session.execute(
        update(api_tokens)
        .where(api_tokens.c.created_by == creator, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=creator)
        .returning(api_tokens.c.id, api_tokens.c.institution_id)
    )
    for token_id, account_id in revoked:
        security_event(
            "api_token_revoked", outcome=reason, user_id=creator, account_id=account_id, credential_id=token_id
        )


async def token_identity(session: AsyncSession, token: str, now: datetime) -> TokenIdentity | None:
    """The identity a token acts with, or None when it does not work (malformed, unknown, wrong secret,
    revoked, expired, account closed, its creator no longer a manager). Notes the last use, to the minute."""
    parsed = parse(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = (
        await session.execute(
            select(api_tokens, institutions.c.closed_at, memberships.c.role)
            .join(institutions, institutions.c.id == api_tokens.c.institution_id)
            .outerjoin(
                memberships,
                (memberships.c.institution_id == api_tokens.c.institution_id)
                & (memberships.c.user_id == api_tokens.c.created_by)
                & ACCEPTED,
            )
            .where(api_tokens.c.id == token_id)
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, digest(secret)):
        refusal = "unknown"
    elif row.revoked_at is not None:
        refusal = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        refusal = "expired"
    elif row.closed_at is not None:
        refusal = "account_closed"
    elif row.role != "manager":
        refusal = "creator_not_manager"
    else:
        refusal = None
    if refusal is not None:
        account_id = row.institution_id if row is not None and refusal != "unknown" else None
        security_event("api_token_refused", outcome=refusal, credential_id=token_id, account_id=account_id)
        return None
    # At most one write a minute per token: a busy token's reads do not each write a row.
    await session.execute(
        update(api_tokens)
        .where(
            api_tokens.c.id == token_id,
            api_tokens.c.last_used_at.is_(None) | (api_tokens.c.last_used_at <= now - LAST_USE_EVERY),
        )
        .values(last_used_at=now)
    )
    creator = await identity_of(session, row.created_by)
    assert creator is not None  # the membership joined above belongs to this user
    restricted = replace(creator, is_organiser=False, memberships={row.institution_id: "manager"})
    return TokenIdentity(**vars(restricted), token_id=token_id, account_id=row.institution_id, scope=row.scope)
