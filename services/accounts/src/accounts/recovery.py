"""Forgotten passwords: a single-use link valid 30 minutes, asked for with an answer that never tells
whether the email exists; using it sets the password, voids other links and every session, and tells
the owner."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.credentials import ThrottlePolicy, email_key, hash_password, spend_attempt, user_by_email
from accounts.models import memberships, users
from accounts.service import InvalidField, consume_token, issue_token, void_tokens
from accounts.validators import ValidationFailure, check_password
from contracts.events.accounts import PasswordChanged, PasswordResetRequested
from servicekit.outbox import Outbox

RESET_PURPOSE = "reset_password"  # of action tokens
RESET_TTL = timedelta(minutes=30)
REQUESTS_PER_EMAIL = ThrottlePolicy(max_failures=3, window=timedelta(hours=1), lockout=timedelta(hours=1))
REQUESTS_PER_SOURCE = ThrottlePolicy(max_failures=20, window=timedelta(hours=1), lockout=timedelta(hours=1))


async def request_reset(session: AsyncSession, outbox: Outbox, email: str, source: str, now: datetime) -> None:
    """Mail a reset link if the account exists and the requests are within limits; silent otherwise."""
    keys = {"reset-" + email_key(email): REQUESTS_PER_EMAIL, f"reset-source:{source}": REQUESTS_PER_SOURCE}
    if not await spend_attempt(session, keys, now):
        return
    user = await user_by_email(session, email)
    if user is None or user.password_hash is None:
        return
    await void_tokens(session, user.id, RESET_PURPOSE, now)
    token = await issue_token(session, user.id, RESET_PURPOSE, now + RESET_TTL)
    await outbox.add(
        session,
        PasswordResetRequested(
            account_id=await _account_of(session, user.id),
            user_id=user.id,
            email=user.email,
            language=user.language,
            reset_token=token,
            expires_at=now + RESET_TTL,
        ),
    )


async def reset_password(
    session: AsyncSession, outbox: Outbox, token: str, new_password: str, now: datetime
) -> uuid.UUID:
    user_id = await consume_token(session, token, RESET_PURPOSE, now)
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).one()
    try:
        check_password(new_password, email=user.email, names=[user.name])
    except ValidationFailure as exc:
        raise InvalidField("password", exc) from exc
    await session.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=await hash_password(new_password), token_version=users.c.token_version + 1)
    )
    await void_tokens(session, user_id, RESET_PURPOSE, now)
    await outbox.add(
        session,
        PasswordChanged(
            account_id=await _account_of(session, user_id),
            user_id=user_id,
            email=user.email,
            language=user.language,
            changed_at=now,
            reason="reset",
        ),
    )
    return user_id


async def _account_of(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    """The institution the user belongs to (the oldest membership); a user with none is its own key."""
    institution = await session.scalar(
        select(memberships.c.institution_id)
        .where(memberships.c.user_id == user_id)
        .order_by(memberships.c.created_at)
        .limit(1)
    )
    return institution or user_id
