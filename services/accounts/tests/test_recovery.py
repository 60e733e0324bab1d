"""Password reset against a real PostgreSQL: the events it writes are read back from the outbox."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts import recovery
from accounts import service as accounts
from accounts.credentials import Identity, login
from accounts_world import opened
from identifiers import new_uai
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

PASSWORD = "violet tramway under nineteen lanterns"
NEW_PASSWORD = "seven copper herons over the loire"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OUTBOX = Outbox("accounts")


async def signed_up(db, email="camille@lycee-hugo.fr"):
    form = accounts.SignUp("Lycée Hugo", "school", "Camille Martin", email, PASSWORD, institution_identifier=new_uai())
    async with db.transaction() as session:
        return await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))


async def ask(db, email, now=NOW, source="192.0.2.1"):
    async with db.transaction() as session:
        await recovery.request_reset(session, OUTBOX, email, source, now)


async def events(db, event_type):
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT value FROM outbox ORDER BY id"))
        return [opened(json.loads(value)) for (value,) in rows if json.loads(value)["type"] == event_type]


async def reset(db, token, password=NEW_PASSWORD, now=NOW + timedelta(minutes=5)):
    async with db.transaction() as session:
        return await recovery.reset_password(session, OUTBOX, token, password, now)


async def test_unknown_and_known_emails_get_the_same_silent_answer_and_only_one_mail(db):
    await signed_up(db)
    await ask(db, "nobody@lycee-hugo.fr")
    await ask(db, "Camille@Lycee-Hugo.fr")
    [mail] = await events(db, "PasswordResetRequested")
    assert mail["email"] == "camille@lycee-hugo.fr"
    assert datetime.fromisoformat(mail["expires_at"]) == NOW + timedelta(minutes=30)


async def test_the_link_sets_the_password_once_voids_sessions_and_tells_the_owner(db):
    await signed_up(db)
    async with db.transaction() as session:
        before = await login(session, "camille@lycee-hugo.fr", PASSWORD, "192.0.2.1", NOW)
    await ask(db, "camille@lycee-hugo.fr")
    [mail] = await events(db, "PasswordResetRequested")
    await reset(db, mail["reset_token"])
    async with db.transaction() as session:
        assert (await login(session, "camille@lycee-hugo.fr", PASSWORD, "192.0.2.1", NOW)).reason
        after = await login(session, "camille@lycee-hugo.fr", NEW_PASSWORD, "192.0.2.1", NOW)
    assert isinstance(before, Identity) and isinstance(after, Identity)
    assert after.token_version == before.token_version + 1, "existing sessions are void"
    [notice] = await events(db, "PasswordChanged")
    assert (notice["email"], notice["reason"]) == ("camille@lycee-hugo.fr", "reset")
    with pytest.raises(accounts.InvalidToken):
        await reset(db, mail["reset_token"], "another fine long passphrase")


async def test_a_new_link_voids_the_older_ones_and_links_expire(db):
    await signed_up(db)
    await ask(db, "camille@lycee-hugo.fr")
    await ask(db, "camille@lycee-hugo.fr", now=NOW + timedelta(minutes=1))
    first, second = await events(db, "PasswordResetRequested")
    with pytest.raises(accounts.InvalidToken):
        await reset(db, first["reset_token"])
    with pytest.raises(accounts.InvalidToken):
        await reset(db, second["reset_token"], now=NOW + timedelta(minutes=32))
    with pytest.raises(accounts.InvalidToken):
        await reset(db, second["reset_token"][:-1] + ("A" if second["reset_token"][-1] != "A" else "B"))
    await reset(db, second["reset_token"])


async def test_a_weak_new_password_is_refused_and_the_link_stays_usable(db):
    await signed_up(db)
    await ask(db, "camille@lycee-hugo.fr")
    [mail] = await events(db, "PasswordResetRequested")
    with pytest.raises(accounts.InvalidField) as refused:
        await reset(db, mail["reset_token"], "motdepasse123")
    assert refused.value.failure.code == "password_common"
    await reset(db, mail["reset_token"])


async def test_requests_are_limited_per_email_without_saying_so(db):
    await signed_up(db)
    for minute in range(6):
        await ask(db, "camille@lycee-hugo.fr", now=NOW + timedelta(minutes=minute), source=f"192.0.2.{minute}")
    assert len(await events(db, "PasswordResetRequested")) == recovery.REQUESTS_PER_EMAIL.max_failures
    await ask(db, "camille@lycee-hugo.fr", now=NOW + timedelta(hours=2))
    assert len(await events(db, "PasswordResetRequested")) == recovery.REQUESTS_PER_EMAIL.max_failures + 1
