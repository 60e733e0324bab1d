"""Personal API tokens against a real PostgreSQL: only managers make, list and revoke them; the token is shown
once and only its hash is kept; it works as its creator on its one account until it is revoked, expires, the
account closes or its creator stops managing the account; its last use is written at most once a minute."""

import io
import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts import access, api_tokens, errors, gdpr, members
from accounts_world import MEMBER_PASSWORD, NOW, OUTBOX, PASSWORD, actor, add, institution, invitation_token
from servicekit.logs import JsonFormatter

pytestmark = pytest.mark.infra


def tampered(token: str) -> str:
    """The token with its last character changed: never the same token (replacing it with "A" would keep one
    token in 64 unchanged)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


async def make(db, manager, account_id, name="Export comptable", scope="read", when=NOW, **options):
    async with db.transaction() as session:
        return await api_tokens.create_token(
            session, await actor(db, manager), account_id, name, scope, when, **options
        )


async def identity(db, token, when=NOW):
    async with db.transaction() as session:
        return await api_tokens.token_identity(session, token, when)


async def active_manager(db, manager, account_id, email):
    """A second manager of the account, who accepted the invitation."""
    [person] = (await add(db, manager, account_id, ("Paul Durand", email))).invited
    async with db.transaction() as session:
        await members.accept_invitation(session, await invitation_token(db, email), MEMBER_PASSWORD, NOW)
        await members.set_role(session, await actor(db, manager), account_id, person, "manager", NOW)
    return person


async def test_a_token_is_shown_once_stored_hashed_and_acts_as_its_creator_on_its_account(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    made = await make(
        db, manager, account_id, name="  Export\ncomptable ", scope="read_write", lifetime=timedelta(days=30)
    )
    token = made["token"]
    assert token.startswith(f"vpat_{made['token_id'].hex}_") and len(token) == 5 + 32 + 1 + 43
    assert (made["name"], made["scope"], made["status"]) == ("Export comptable", "read_write", "active")
    assert made["prefix"] == token[:13] and made["expires_at"] == NOW + timedelta(days=30)
    async with db.transaction() as session:
        stored = (await session.execute(text("SELECT * FROM api_tokens"))).mappings().one()
    secret = token[38:]  # after "vpat_", the id and "_"
    assert secret not in str(dict(stored)) and stored["secret_hash"] == api_tokens.digest(secret)

    async with db.transaction() as session:
        [listed] = await api_tokens.list_tokens(session, await actor(db, manager), account_id, NOW)
    assert "token" not in listed and listed["last_used_at"] is None and listed["token_id"] == made["token_id"]

    found = await identity(db, token, NOW + timedelta(seconds=5))
    assert found is not None
    assert (found.user_id, found.account_id, found.scope, found.token_id) == (
        manager,
        account_id,
        "read_write",
        made["token_id"],
    )
    assert found.memberships == {account_id: "manager"} and not found.is_organiser

    async with db.transaction() as session:
        [listed] = await api_tokens.list_tokens(session, await actor(db, manager), account_id, NOW)
    assert listed["last_used_at"] == NOW + timedelta(seconds=5)


async def test_last_use_is_written_at_most_once_a_minute(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    token = (await make(db, manager, account_id))["token"]

    async def last_used():
        async with db.transaction() as session:
            return await session.scalar(text("SELECT last_used_at FROM api_tokens"))

    for seconds in (0, 10, 59):
        assert await identity(db, token, NOW + timedelta(seconds=seconds)) is not None
    assert await last_used() == NOW, "uses within the minute write nothing"
    assert await identity(db, token, NOW + timedelta(seconds=61)) is not None
    assert await last_used() == NOW + timedelta(seconds=61)


async def test_a_damaged_unknown_or_expired_token_gives_no_identity(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    token = (await make(db, manager, account_id, lifetime=timedelta(days=1)))["token"]
    token_id, secret = api_tokens.parse(token)
    wrong_secret = f"vpat_{token_id.hex}_{'A' * 43}"
    unknown_id = f"vpat_{'0' * 32}_{secret}"
    for bad in (wrong_secret, unknown_id, token[:-1], token + "x", "vpat_", token.upper(), ""):
        assert await identity(db, bad) is None, bad
    assert await identity(db, token, NOW + timedelta(hours=23)) is not None
    assert await identity(db, token, NOW + timedelta(days=1)) is None


async def test_only_the_accounts_managers_make_list_and_revoke_its_tokens(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    [member] = (await add(db, manager_a, a, ("Léa Roux", "lea@lycee-a.fr"))).invited
    async with db.transaction() as session:
        await members.accept_invitation(session, await invitation_token(db, "lea@lycee-a.fr"), MEMBER_PASSWORD, NOW)
    made = await make(db, manager_a, a)
    for who, refusal in ((member, errors.Forbidden), (manager_b, errors.NotFound)):
        with pytest.raises(refusal):
            await make(db, who, a)
        with pytest.raises(refusal):
            async with db.transaction() as session:
                await api_tokens.list_tokens(session, await actor(db, who), a, NOW)
        with pytest.raises(refusal):
            async with db.transaction() as session:
                await api_tokens.revoke_token(session, await actor(db, who), a, made["token_id"], NOW)
    with pytest.raises(errors.NotFound):  # a token of another account is not found through this one
        async with db.transaction() as session:
            await api_tokens.revoke_token(session, await actor(db, manager_b), b, made["token_id"], NOW)
    assert await identity(db, made["token"]) is not None

    async with db.transaction() as session:
        await api_tokens.revoke_token(session, await actor(db, manager_a), a, made["token_id"], NOW)
        await api_tokens.revoke_token(session, await actor(db, manager_a), a, made["token_id"], NOW)  # no error
        assert await api_tokens.list_tokens(session, await actor(db, manager_a), a, NOW) == []
    assert await identity(db, made["token"]) is None


async def test_names_follow_the_rule_of_every_name(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    for name, code in (("", "name_missing"), ("\u202eabc", "name_invalid"), ("x" * 201, "name_too_long")):
        with pytest.raises(errors.InvalidField) as refused:
            await make(db, manager, account_id, name=name)
        assert (refused.value.field, refused.value.code) == ("name", code)


async def test_an_account_has_at_most_twenty_live_tokens(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    made = [await make(db, manager, account_id, name=f"Jeton {i}") for i in range(api_tokens.MAX_LIVE_TOKENS - 1)]
    await make(db, manager, account_id, name="Expire vite", lifetime=timedelta(days=1))
    with pytest.raises(api_tokens.TokenLimit):
        await make(db, manager, account_id, name="Un de trop")
    async with db.transaction() as session:
        await api_tokens.revoke_token(session, await actor(db, manager), account_id, made[0]["token_id"], NOW)
    await make(db, manager, account_id, name="À la place")
    await make(db, manager, account_id, name="Après expiration", when=NOW + timedelta(days=1))  # one expired


async def test_a_token_stops_when_its_creator_stops_managing_and_does_not_come_back(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    paul = await active_manager(db, manager, account_id, "paul@lycee.fr")
    by_paul = (await make(db, paul, account_id))["token"]
    by_camille = (await make(db, manager, account_id))["token"]
    async with db.transaction() as session:
        await members.set_role(session, await actor(db, manager), account_id, paul, "member", NOW)
    assert await identity(db, by_paul) is None
    async with db.transaction() as session:
        await members.set_role(session, await actor(db, manager), account_id, paul, "manager", NOW)
    assert await identity(db, by_paul) is None, "revoked with the role, not suspended"

    by_paul = (await make(db, paul, account_id))["token"]
    async with db.transaction() as session:
        await members.remove_member(session, OUTBOX, await actor(db, manager), account_id, paul, NOW)
    assert await identity(db, by_paul) is None
    assert await identity(db, by_camille) is not None


async def test_a_closed_account_refuses_tokens_and_new_ones(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    token = (await make(db, manager, account_id))["token"]
    async with db.transaction() as session:
        await session.execute(text("UPDATE institutions SET closed_at = :now"), {"now": NOW})
    assert await identity(db, token) is None
    with pytest.raises(errors.AccountClosed):
        await make(db, manager, account_id)

    account_id, manager = await institution(db, "dora@lycee-b.fr", "Lycée B")
    token = (await make(db, manager, account_id))["token"]
    async with db.transaction() as session:
        await gdpr.close_account(session, OUTBOX, await actor(db, manager), account_id, PASSWORD, NOW)
    assert await identity(db, token) is None


async def test_an_organisers_token_carries_no_organiser_role(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    async with db.transaction() as session:
        await access.set_organiser(session, None, manager, True)
    found = await identity(db, (await make(db, manager, account_id))["token"])
    assert found is not None and not found.is_organiser and found.memberships == {account_id: "manager"}


async def test_tokens_are_logged_by_id_never_by_secret(db):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("accounts"))
    root = logging.getLogger()
    account_id, manager = await institution(db, "camille@lycee.fr")
    root.addHandler(handler)
    try:
        made = await make(db, manager, account_id)
        assert await identity(db, tampered(made["token"])) is None
        async with db.transaction() as session:
            await api_tokens.revoke_token(session, await actor(db, manager), account_id, made["token_id"], NOW)
        assert await identity(db, made["token"]) is None
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = [(line["security_event"], line["outcome"]) for line in lines if "security_event" in line]
    assert events == [
        ("api_token_created", "read"),
        ("api_token_refused", "unknown"),
        ("api_token_revoked", "revoked"),
        ("api_token_refused", "revoked"),
    ]
    assert all(line.get("credential_id") == str(made["token_id"]) for line in lines if "security_event" in line)
    assert made["token"][38:] not in stream.getvalue()
