"""What a signed-in person changes about themselves: name and language, password, email address.

Changing the address needs the password and a confirmation from the new address (a single-use link valid
24 h, EmailChangeRequested); once confirmed, the old address is told (EmailChanged) and given a "this was
not me" link valid 7 days: whoever knew the password could have made the change, so that link restores the
old address, ends every session, voids the password and mails a reset link to the restored address."""

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.access import home_account
from accounts.api_tokens import revoke_every_token_of
from accounts.credentials import check_current_password, set_password
from accounts.errors import EmailTaken, InvalidField, InvalidToken, NotFound, valid_name
from accounts.models import sessions, users
from accounts.recovery import mail_reset_link, password_changed
from accounts.sealing import sealed
from accounts.service import consume_token, consume_token_with_detail, issue_token, void_tokens
from accounts.validators import ValidationFailure, normalise_email
from contracts.events.accounts import EmailChanged, EmailChangeRequested
from servicekit.logs import security_event
from servicekit.outbox import Outbox

CHANGE_EMAIL = "change_email"  # purposes of action tokens
CHANGE_EMAIL_TTL = timedelta(hours=24)
REVERT_EMAIL = "revert_email"
REVERT_EMAIL_TTL = timedelta(days=7)


async def update_settings(
    session: AsyncSession, user_id: uuid.UUID, *, name: str | None = None, language: Literal["fr", "en"] | None = None
) -> None:
    if await session.scalar(select(users.c.id).where(users.c.id == user_id)) is None:
        raise NotFound
    if name is not None:
        name = valid_name("name", name)
    values: dict[str, Any] = {key: value for key, value in (("name", name), ("language", language)) if value}
    if values:
        await session.execute(update(users).where(users.c.id == user_id).values(**values))


async def change_password(
    session: AsyncSession,
    outbox: Outbox,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    now: datetime,
    *,
    keep_session: uuid.UUID | None = None,
) -> None:
    """Set a new password; every other session ends (the one it was changed from may stay)."""
    user = await check_current_password(session, user_id, current_password, now, action="password_change")
    version = await set_password(session, user, new_password)
    if keep_session is not None:
        await session.execute(
            update(sessions)
            .where(sessions.c.id == keep_session, sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
            .values(token_version=version)
        )
    await outbox.add(session, await password_changed(session, user, now, "changed"))
    security_event("password_changed", outcome="changed", user_id=user_id, how="self_service")


async def _free(session: AsyncSession, email: str, user_id: uuid.UUID) -> None:
    taken_by = await session.scalar(select(users.c.id).where(func.lower(users.c.email) == email.casefold()))
    if taken_by is not None and taken_by != user_id:
        raise EmailTaken


async def request_email_change(
    session: AsyncSession, outbox: Outbox, user_id: uuid.UUID, password: str, new_email: str, now: datetime
) -> None:
    user = await check_current_password(session, user_id, password, now, action="email_change")
    try:
        email = normalise_email(new_email)
    except ValidationFailure as exc:
        raise InvalidField("new_email", exc) from exc
    if email.casefold() == user.email.casefold():
        raise InvalidField("new_email", ValidationFailure("email_unchanged", "This is already your address."))
    # An address someone already uses is not refused here (that would tell who is registered): the link goes
    # to that address, whose owner cannot use it (the confirmation refuses a taken address) and may ignore it.
    await session.execute(update(users).where(users.c.id == user_id).values(pending_email=email))
    await void_tokens(session, user_id, CHANGE_EMAIL, now)
    token = await issue_token(session, user_id, CHANGE_EMAIL, now + CHANGE_EMAIL_TTL)
    account_id = await home_account(session, user_id)
    security_event("email_change_requested", outcome="pending", user_id=user_id)
    await outbox.add(
        session,
        EmailChangeRequested(
            account_id=account_id,
            user_id=user_id,
            name=user.name,
            new_email=email,
            language=user.language,
            confirmation_token=sealed(token, EmailChangeRequested, "confirmation_token", account_id),
            expires_at=now + CHANGE_EMAIL_TTL,
        ),
    )


async def confirm_email_change(session: AsyncSession, outbox: Outbox, token: str, now: datetime) -> str:
    """Switch to the confirmed new address; the new address, or EmailTaken if someone took it meanwhile."""
    user_id = await consume_token(session, token, CHANGE_EMAIL, now)
    user = (await session.execute(select(users).where(users.c.id == user_id).with_for_update())).one()
    if user.pending_email is None:
        raise InvalidToken
    await _free(session, user.pending_email, user_id)
    await session.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(email=user.pending_email, pending_email=None, email_verified_at=now)
    )
    await void_tokens(session, user_id, REVERT_EMAIL, now)
    revert_token = await issue_token(session, user_id, REVERT_EMAIL, now + REVERT_EMAIL_TTL, detail=user.email)
    account_id = await home_account(session, user_id)
    await outbox.add(
        session,
        EmailChanged(
            account_id=account_id,
            user_id=user_id,
            old_email=user.email,
            new_email=user.pending_email,
            language=user.language,
            changed_at=now,
            revert_token=sealed(revert_token, EmailChanged, "revert_token", account_id),
            revert_expires_at=now + REVERT_EMAIL_TTL,
        ),
    )
    security_event("email_changed", outcome="changed", user_id=user_id)
    return str(user.pending_email)


async def revert_email_change(session: AsyncSession, outbox: Outbox, token: str, now: datetime) -> str:
    """ "This was not me": the old address comes back, and a new password must be set from it."""
    user_id, old_email = await consume_token_with_detail(session, token, REVERT_EMAIL, now)
    assert old_email is not None
    await _free(session, old_email, user_id)
    user = (
        await session.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                email=old_email,
                email_verified_at=now,
                pending_email=None,
                password_hash=None,
                token_version=users.c.token_version + 1,
            )
            .returning(users)
        )
    ).one()
    await void_tokens(session, user_id, CHANGE_EMAIL, now)
    await revoke_every_token_of(session, user_id, now, reason="email_change_reverted")
    await mail_reset_link(session, outbox, user, now)
    security_event("email_change_reverted", outcome="changed", user_id=user_id)
    return old_email
