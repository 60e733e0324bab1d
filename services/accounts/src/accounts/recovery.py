"""Forgotten passwords: a single-use link valid 30 minutes, asked for with an answer that never tells
whether the email exists; using it sets the password, voids other links and every session, and tells
the owner.

Known and unknown addresses must not be told apart by the time of the answer either: the request and its
verification-link counterpart (`service.resend_verification`) spend the same throttle writes on both paths,
and the API answers them `no_faster_than` a floor well above the work a known address adds (a few ms)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import home_account
from accounts.credentials import ThrottlePolicy, email_key, has_joined, set_password, spend_attempt, user_by_email
from accounts.models import users
from accounts.sealing import sealed
from accounts.service import consume_token, issue_token, void_tokens
from contracts.events.accounts import PasswordChanged, PasswordResetRequested
from servicekit.logs import security_event
from servicekit.outbox import Outbox

RESET_PURPOSE = "reset_password"  # of action tokens
RESET_TTL = timedelta(minutes=30)
REQUESTS_PER_EMAIL = ThrottlePolicy(max_failures=3, window=timedelta(hours=1), lockout=timedelta(hours=1))
REQUESTS_PER_SOURCE = ThrottlePolicy(max_failures=20, window=timedelta(hours=1), lockout=timedelta(hours=1))


@asynccontextmanager
async def no_faster_than(floor: timedelta) -> AsyncIterator[None]:
    """The block, then a wait until `floor` has passed since it began (also when it raises): a path that does
    less work answers no sooner than one that does more, as long as both stay under the floor."""
    deadline = time.perf_counter() + floor.total_seconds()
    try:
        yield
    finally:
        await asyncio.sleep(max(0.0, deadline - time.perf_counter()))


async def request_reset(session: AsyncSession, outbox: Outbox, email: str, source: str, now: datetime) -> None:
    """Mail a reset link if the account exists and the requests are within limits; silent otherwise."""
    keys = {"reset-" + email_key(email): REQUESTS_PER_EMAIL, f"reset-source:{source}": REQUESTS_PER_SOURCE}
    if not await spend_attempt(session, keys, now):
        return
    user = await user_by_email(session, email)
    if user is not None and has_joined(user):
        await mail_reset_link(session, outbox, user, now)


async def mail_reset_link(session: AsyncSession, outbox: Outbox, user: Any, now: datetime) -> None:
    """A new reset link for `user` (a users row), voiding the older ones."""
    await void_tokens(session, user.id, RESET_PURPOSE, now)
    token = await issue_token(session, user.id, RESET_PURPOSE, now + RESET_TTL)
    account_id = await home_account(session, user.id)
    await outbox.add(
        session,
        PasswordResetRequested(
            account_id=account_id,
            user_id=user.id,
            email=user.email,
            language=user.language,
            reset_token=sealed(token, PasswordResetRequested, "reset_token", account_id),
            expires_at=now + RESET_TTL,
        ),
    )


async def reset_password(
    session: AsyncSession, outbox: Outbox, token: str, new_password: str, now: datetime
) -> uuid.UUID:
    user_id = await consume_token(session, token, RESET_PURPOSE, now)
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).one()
    await set_password(session, user, new_password)
    await void_tokens(session, user_id, RESET_PURPOSE, now)
    await outbox.add(session, await password_changed(session, user, now, "reset"))
    security_event("password_changed", outcome="changed", user_id=user_id, how="reset_link")
    return user_id


async def password_changed(session: AsyncSession, user: Any, now: datetime, reason: str) -> PasswordChanged:
    """The event that tells `user` (a users row) their password changed."""
    return PasswordChanged(
        account_id=await home_account(session, user.id),
        user_id=user.id,
        email=user.email,
        language=user.language,
        changed_at=now,
        reason=reason,
    )
