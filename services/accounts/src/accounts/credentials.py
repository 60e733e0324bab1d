"""Login with throttling: failures are counted per email address and per source address, in a window;
too many lock that key for a while. Unknown and known emails are throttled and answered alike.

The one throttle of the service lives here (table `login_throttle`, `ThrottlePolicy`, `spend`): login
failures, reset and verification requests, sign-ups per source, invitations per account and day, and mails
a manager sends one member all count attempts under a key with it."""

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.errors import InvalidField, NotFound, TooManyPasswordAttempts, WrongPassword
from accounts.models import login_throttle, memberships, sessions, users
from accounts.validators import ValidationFailure, check_password
from servicekit.logs import security_event

# argon2id with OWASP's first recommended setting (m=19 MiB, t=2, p=1): about 47 ms a hash on these 2 cores,
# against 180 ms for argon2-cffi's default (m=64 MiB, t=3, p=4), which would make 50 concurrent logins queue
# for seconds. Hashes run in worker threads so the event loop keeps serving.
password_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = password_hasher.hash("not a real password; spends the same time as a real check")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(password_hasher.hash, password)


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta
    lockout: timedelta


PER_EMAIL = ThrottlePolicy(max_failures=5, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
PER_SOURCE = ThrottlePolicy(max_failures=30, window=timedelta(minutes=15), lockout=timedelta(minutes=15))


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    email: str
    name: str
    language: str
    email_verified: bool
    token_version: int
    is_organiser: bool
    memberships: dict[uuid.UUID, str] = field(default_factory=dict)  # institution id -> manager | member


@dataclass(frozen=True)
class Refused:
    reason: str  # invalid_credentials | too_many_attempts
    retry_after: timedelta | None = None


def email_key(email: str) -> str:
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _source_key(source: str) -> str:
    return f"source:{source}"


async def login(
    session: AsyncSession,
    email: str,
    password: str,
    source: str,
    now: datetime,
    *,
    per_email: ThrottlePolicy = PER_EMAIL,
    per_source: ThrottlePolicy = PER_SOURCE,
) -> Identity | Refused:
    """Check the credentials; the caller commits whatever the outcome (failures are recorded)."""
    keys = {email_key(email): per_email, _source_key(source): per_source}
    locked_until = await is_locked(session, keys, now)
    if locked_until is not None:
        security_event("login_refused_while_locked", outcome="refused", source=source)
        return Refused("too_many_attempts", locked_until - now)
    user = await user_by_email(session, email)
    if not await asyncio.to_thread(password_matches, user.password_hash if user else None, password):
        for key, policy in keys.items():
            await record_attempt(session, key, policy, now)
        locked = await is_locked(session, keys, now) is not None
        # the user's id when the address is theirs (never the address typed); unknown_user otherwise
        security_event(
            "login_failed",
            outcome="locked" if locked else "refused",
            user_id=user.id if user else None,
            unknown_user=user is None or None,
            source=source,
        )
        return Refused("invalid_credentials")
    assert user is not None
    security_event("login_succeeded", outcome="allowed", user_id=user.id, source=source)
    await session.execute(login_throttle.delete().where(login_throttle.c.key == email_key(email)))
    if password_hasher.check_needs_rehash(user.password_hash):
        await session.execute(
            update(users).where(users.c.id == user.id).values(password_hash=await hash_password(password))
        )
    return await _identity(session, user)


def has_joined(user: Any) -> bool:
    """Whether the person (a users row) ever set a password or proved their address; an invited person who
    has not accepted has done neither."""
    return user.password_hash is not None or user.email_verified_at is not None


JOINED = users.c.password_hash.is_not(None) | users.c.email_verified_at.is_not(None)  # has_joined, in SQL


async def user_by_email(session: AsyncSession, email: str) -> Any:
    """The user row whose email matches, ignoring case and surrounding spaces, or None."""
    return (await session.execute(select(users).where(func.lower(users.c.email) == email.strip().lower()))).first()


async def identity_of(session: AsyncSession, user_id: uuid.UUID) -> Identity | None:
    user = (await session.execute(select(users).where(users.c.id == user_id))).first()
    return None if user is None else await _identity(session, user)


async def _identity(session: AsyncSession, user: Any) -> Identity:
    roles = await session.execute(
        select(memberships.c.institution_id, memberships.c.role).where(
            memberships.c.user_id == user.id, memberships.c.accepted_at.is_not(None)
        )
    )
    return Identity(
        user_id=user.id,
        email=user.email,
        name=user.name,
        language=user.language,
        email_verified=user.email_verified_at is not None,
        token_version=user.token_version,
        is_organiser=user.is_organiser,
        memberships={institution: role for institution, role in roles},
    )


async def is_locked(session: AsyncSession, keys: Iterable[str], now: datetime) -> datetime | None:
    """Until when the most locked of `keys` stays locked, or None."""
    locked_until: datetime | None = await session.scalar(
        select(func.max(login_throttle.c.locked_until)).where(
            login_throttle.c.key.in_(list(keys)), login_throttle.c.locked_until > now
        )
    )
    return locked_until


@dataclass(frozen=True)
class Exhausted:
    """Why `spend` refused: when to try again, and how many attempts would still fit now (0 while locked)."""

    retry_after: timedelta
    remaining: int


async def spend(session: AsyncSession, keys: dict[str, ThrottlePolicy], now: datetime, n: int = 1) -> Exhausted | None:
    """Count `n` attempts against each key, all or nothing: None when they fit under every key's limit;
    otherwise nothing is counted and the answer says when to retry and how many would fit now. The keys'
    rows stay locked until the transaction ends, so concurrent spenders of one key queue (no overdraft)."""
    refusals: list[Exhausted] = []
    for key, policy in sorted(keys.items()):
        row = await _locked_row(session, key, now)
        if row.locked_until is not None and row.locked_until > now:
            refusals.append(Exhausted(row.locked_until - now, 0))
            continue
        used = 0 if row.window_started_at <= now - policy.window else row.failures
        remaining = policy.max_failures - used
        if n > remaining:
            refusals.append(Exhausted(row.window_started_at + policy.window - now, max(remaining, 0)))
    if refusals:
        return Exhausted(max(r.retry_after for r in refusals), min(r.remaining for r in refusals))
    for key, policy in keys.items():
        await record_attempt(session, key, policy, now, n)
    return None


async def spend_attempt(session: AsyncSession, keys: dict[str, ThrottlePolicy], now: datetime) -> bool:
    """Count one attempt against each key; False, counting nothing, while any of them is exhausted."""
    return await spend(session, keys, now) is None


async def _locked_row(session: AsyncSession, key: str, now: datetime) -> Any:
    await session.execute(
        insert(login_throttle).values(key=key, failures=0, window_started_at=now).on_conflict_do_nothing()
    )
    return (await session.execute(select(login_throttle).where(login_throttle.c.key == key).with_for_update())).one()


async def record_attempt(session: AsyncSession, key: str, policy: ThrottlePolicy, now: datetime, n: int = 1) -> None:
    """Count `n` attempts against `key`; the count that reaches the limit locks it for `policy.lockout`."""
    row = await _locked_row(session, key, now)
    fresh_window = row.window_started_at <= now - policy.window
    failures = n if fresh_window else row.failures + n
    await session.execute(
        update(login_throttle)
        .where(login_throttle.c.key == key)
        .values(
            failures=0 if failures >= policy.max_failures else failures,
            window_started_at=now if fresh_window else row.window_started_at,
            locked_until=now + policy.lockout if failures >= policy.max_failures else row.locked_until,
        )
    )


SESSION_TTL = timedelta(hours=8)


async def open_session(
    session: AsyncSession, identity: Identity, source: str, now: datetime, ttl: timedelta = SESSION_TTL
) -> tuple[uuid.UUID, datetime]:
    """A new session of the user (and the time it ends); the user's finished sessions are forgotten."""
    await session.execute(
        sessions.delete().where(
            sessions.c.user_id == identity.user_id, (sessions.c.ended_at.is_not(None)) | (sessions.c.expires_at <= now)
        )
    )
    session_id = uuid.uuid4()
    await session.execute(
        sessions.insert().values(
            id=session_id,
            user_id=identity.user_id,
            token_version=identity.token_version,
            source=source,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return session_id, now + ttl


async def session_identity(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> Identity | None:
    """The identity behind a session that is still open: not ended, not expired, and issued with the user's
    current token version (a password reset or "log out everywhere" bumps it)."""
    user = (
        await session.execute(
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.id == session_id,
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > now,
                sessions.c.token_version == users.c.token_version,
            )
        )
    ).first()
    return None if user is None else await _identity(session, user)


async def end_session(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(sessions).where(sessions.c.id == session_id, sessions.c.ended_at.is_(None)).values(ended_at=now)
    )


async def log_out_everywhere(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    """End every session of the user; sessions issued before the token version bump are void too."""
    version = await session.scalar(
        update(users)
        .where(users.c.id == user_id)
        .values(token_version=users.c.token_version + 1)
        .returning(users.c.token_version)
    )
    if version is None:
        raise NotFound
    await session.execute(
        update(sessions).where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None)).values(ended_at=now)
    )
    security_event("sessions_ended_everywhere", outcome="changed", user_id=user_id)
    return int(version)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash (a dummy one stands in), so timing reveals nothing."""
    try:
        return password_hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def check_current_password(
    session: AsyncSession, user_id: uuid.UUID, password: str, now: datetime, *, action: str
) -> Any:
    """The user's row, locked, when `password` is theirs; WrongPassword otherwise. Re-checks behind a session
    (password change, email change, closure: `action`) are throttled as login is, under the same key and
    limit: a wrong password counts against the user's login key (in a transaction of its own, so that the
    refusal's rollback keeps it); once the key is locked, TooManyPasswordAttempts until the lockout ends,
    even for the right password."""
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).first()
    if user is None:
        raise NotFound
    key = email_key(user.email)
    locked_until = await is_locked(session, [key], now)
    if locked_until is not None:
        security_event("password_recheck_locked", outcome="refused", user_id=user_id, action=action)
        raise TooManyPasswordAttempts(locked_until - now)
    if not await asyncio.to_thread(password_matches, user.password_hash, password):
        async with AsyncSession(session.bind) as own, own.begin():
            await record_attempt(own, key, PER_EMAIL, now)
            locked = await is_locked(own, [key], now) is not None
        security_event(
            "password_recheck_failed", outcome="locked" if locked else "refused", user_id=user_id, action=action
        )
        raise WrongPassword
    return user


async def set_password(
    session: AsyncSession, user: Any, new_password: str, *, field: str = "new_password", **also: Any
) -> int:
    """Give `user` (a users row) a new password once it passes the rules; every session issued before ends
    (the token version is bumped). `also`: other columns to set. Returns the new token version."""
    try:
        check_password(new_password, email=user.email, names=[user.name])
    except ValidationFailure as exc:
        raise InvalidField(field, exc) from exc
    version = await session.scalar(
        update(users)
        .where(users.c.id == user.id)
        .values(password_hash=await hash_password(new_password), token_version=users.c.token_version + 1, **also)
        .returning(users.c.token_version)
    )
    return int(version)
