"""Login and throttling against a real PostgreSQL (the accounts schema from its migrations)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from accounts import service as accounts
from accounts.credentials import (
    PER_EMAIL,
    PER_SOURCE,
    Identity,
    Refused,
    end_session,
    log_out_everywhere,
    login,
    open_session,
    session_identity,
)
from accounts.errors import NotFound
from identifiers import new_uai
from servicekit.db import Database
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

PASSWORD = "violet tramway under nineteen lanterns"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def sign_up(db: Database, email: str) -> uuid.UUID:
    form = accounts.SignUp("Lycée Test", "school", "Camille Martin", email, PASSWORD, institution_identifier=new_uai())
    async with db.transaction() as session:
        return await accounts.sign_up(session, Outbox("accounts"), form, verification_ttl=timedelta(hours=48))


async def attempt(db: Database, email: str, password: str, source: str = "10.0.0.1", now: datetime = NOW):
    async with db.transaction() as session:
        return await login(session, email, password, source, now)


async def test_the_right_password_gives_the_identity_and_roles(db):
    account_id = await sign_up(db, "camille@lycee.fr")
    identity = await attempt(db, "  Camille@Lycee.FR ", PASSWORD)
    assert isinstance(identity, Identity)
    assert identity.email == "camille@lycee.fr"
    assert identity.memberships == {account_id: "manager"}
    assert identity.email_verified is False, "an unverified account can log in (but not buy or enrol)"


async def test_wrong_and_unknown_get_the_same_answer(db):
    await sign_up(db, "camille@lycee.fr")
    assert await attempt(db, "camille@lycee.fr", "wrong password!") == Refused("invalid_credentials")
    assert await attempt(db, "nobody@lycee.fr", "wrong password!") == Refused("invalid_credentials")


@pytest.mark.parametrize("email", ["camille@lycee.fr", "nobody@lycee.fr"])
async def test_repeated_failures_lock_the_email_until_the_delay_passes(db, email):
    await sign_up(db, "camille@lycee.fr")
    for i in range(PER_EMAIL.max_failures):
        assert (await attempt(db, email, "wrong password!", source=f"10.0.0.{i}")).reason == "invalid_credentials"
    locked = await attempt(db, email, PASSWORD, source="10.0.9.9", now=NOW + timedelta(minutes=1))
    assert locked == Refused("too_many_attempts", PER_EMAIL.lockout - timedelta(minutes=1))
    after = await attempt(db, email, PASSWORD, now=NOW + PER_EMAIL.lockout + timedelta(seconds=1))
    if email == "camille@lycee.fr":
        assert isinstance(after, Identity)
    else:
        assert after == Refused("invalid_credentials"), "unknown emails lock and unlock exactly like known ones"


async def test_failures_outside_the_window_do_not_add_up(db):
    await sign_up(db, "camille@lycee.fr")
    for i in range(PER_EMAIL.max_failures * 2):
        later = NOW + i * (PER_EMAIL.window / (PER_EMAIL.max_failures - 1))
        assert (await attempt(db, "camille@lycee.fr", "wrong password!", now=later)).reason == "invalid_credentials"


async def test_one_source_trying_many_emails_is_locked(db):
    await sign_up(db, "camille@lycee.fr")
    for i in range(PER_SOURCE.max_failures):
        await attempt(db, f"guess-{i}@lycee.fr", "wrong password!", source="203.0.113.7")
    refused = await attempt(db, "camille@lycee.fr", PASSWORD, source="203.0.113.7")
    assert refused.reason == "too_many_attempts"
    assert isinstance(await attempt(db, "camille@lycee.fr", PASSWORD, source="198.51.100.1"), Identity)


async def test_sessions_end_one_by_one_everywhere_or_when_they_expire(db):
    await sign_up(db, "camille@lycee.fr")
    identity = await attempt(db, "camille@lycee.fr", PASSWORD)
    async with db.transaction() as session:
        laptop, _ = await open_session(session, identity, "192.0.2.1", NOW)
        phone, _ = await open_session(session, identity, "192.0.2.2", NOW)
        short, _ = await open_session(session, identity, "192.0.2.3", NOW, ttl=timedelta(minutes=1))
        assert (await session_identity(session, laptop, NOW)).user_id == identity.user_id
        assert await session_identity(session, short, NOW + timedelta(minutes=2)) is None
        await end_session(session, laptop, NOW)
        assert await session_identity(session, laptop, NOW) is None
        assert await session_identity(session, phone, NOW) is not None, "logging out ends that session only"
        assert await log_out_everywhere(session, identity.user_id, NOW) == identity.token_version + 1
        assert await session_identity(session, phone, NOW) is None
        assert await session_identity(session, uuid.uuid4(), NOW) is None
    assert (await attempt(db, "camille@lycee.fr", PASSWORD)).token_version == identity.token_version + 1
    with pytest.raises(NotFound):
        async with db.transaction() as session:
            await log_out_everywhere(session, uuid.uuid4(), NOW)
