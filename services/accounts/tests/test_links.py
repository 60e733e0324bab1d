"""Every kind of mailed link refuses a tampered, expired, reused or other-purpose token, against a real
PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts import errors, me, members, recovery
from accounts import service as accounts
from accounts_world import OUTBOX, institution

pytestmark = pytest.mark.infra

NEW_PASSWORD = "amber lighthouse beyond twelve dunes"

USES = {
    accounts.VERIFY_EMAIL: lambda session, token, now: accounts.verify_email(session, OUTBOX, token),
    recovery.RESET_PURPOSE: lambda session, token, now: recovery.reset_password(
        session, OUTBOX, token, NEW_PASSWORD, now
    ),
    members.INVITATION: lambda session, token, now: members.accept_invitation(session, token, NEW_PASSWORD, now),
    me.CHANGE_EMAIL: lambda session, token, now: me.confirm_email_change(session, OUTBOX, token, now),
    me.REVERT_EMAIL: lambda session, token, now: me.revert_email_change(session, OUTBOX, token, now),
}


async def link(db, user_id, purpose, expires_at):
    async with db.transaction() as session:
        if purpose == members.INVITATION:  # an invited person has no password yet
            await session.execute(text("UPDATE users SET password_hash = NULL WHERE id = :id"), {"id": user_id})
        if purpose == me.CHANGE_EMAIL:
            await session.execute(
                text("UPDATE users SET pending_email = 'new@lycee.fr' WHERE id = :id"), {"id": user_id}
            )
        return await accounts.issue_token(session, user_id, purpose, expires_at, detail="old@lycee.fr")


async def refused(db, purpose, token, now):
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await USES[purpose](session, token, now)


@pytest.mark.parametrize("purpose", list(USES))
async def test_a_link_works_once_and_only_as_itself(db, purpose):
    _, user_id = await institution(db, "camille@lycee.fr")
    now = datetime.now(UTC)
    token = await link(db, user_id, purpose, now + timedelta(hours=1))
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    await refused(db, purpose, tampered, now)
    await refused(db, purpose, "x" * len(token), now)
    for other in USES:
        if other != purpose:
            await refused(db, other, token, now)
    async with db.transaction() as session:
        await USES[purpose](session, token, now)
    await refused(db, purpose, token, now)


@pytest.mark.parametrize("purpose", list(USES))
async def test_an_expired_link_is_refused(db, purpose):
    _, user_id = await institution(db, "camille@lycee.fr")
    now = datetime.now(UTC)
    token = await link(db, user_id, purpose, now - timedelta(seconds=1))
    await refused(db, purpose, token, now)
