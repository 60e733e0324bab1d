"""A person's own changes (password, email, settings), organisers, and the GDPR export and closure, against a
real PostgreSQL."""

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts import access, api_tokens, errors, gdpr, me, members, recovery
from accounts import service as accounts
from accounts.credentials import Identity, login, open_session, session_identity
from accounts.csv_import import MemberRow
from accounts_world import NOW, OUTBOX, PASSWORD, actor, add, events, institution
from identifiers import new_uai

pytestmark = pytest.mark.infra

NEW_PASSWORD = "amber lighthouse beyond twelve dunes"


async def log_in(db, email, password):
    async with db.transaction() as session:
        return await login(session, email, password, "192.0.2.1", NOW)


async def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(db):
    _, user = await institution(db, "camille@lycee.fr")
    identity = await log_in(db, "camille@lycee.fr", PASSWORD)
    async with db.transaction() as session:
        here, _ = await open_session(session, identity, "192.0.2.1", NOW)
        elsewhere, _ = await open_session(session, identity, "192.0.2.2", NOW)
    for current, new, error in (
        (NEW_PASSWORD, NEW_PASSWORD, errors.WrongPassword),
        (PASSWORD, "camille martin 2026", errors.InvalidField),
    ):
        with pytest.raises(error):
            async with db.transaction() as session:
                await me.change_password(session, OUTBOX, user, current, new, NOW, keep_session=here)
    async with db.transaction() as session:
        await me.change_password(session, OUTBOX, user, PASSWORD, NEW_PASSWORD, NOW, keep_session=here)
        assert await session_identity(session, here, NOW) is not None
        assert await session_identity(session, elsewhere, NOW) is None
    assert isinstance(await log_in(db, "camille@lycee.fr", NEW_PASSWORD), Identity)
    [changed] = await events(db, "PasswordChanged")
    assert (changed["reason"], changed["email"]) == ("changed", "camille@lycee.fr")


async def test_an_email_change_needs_the_password_and_a_confirmation_from_the_new_address(db):
    account_id, user = await institution(db, "camille@lycee.fr")
    await institution(db, "dora@lycee-b.fr")
    for password, new_email, code in (
        (NEW_PASSWORD, "camille.martin@lycee.fr", "wrong_password"),
        (PASSWORD, "not-an-email", "email_invalid"),
        (PASSWORD, "Camille@lycee.fr", "email_unchanged"),
    ):
        with pytest.raises(errors.AccountsError) as refused:
            async with db.transaction() as session:
                await me.request_email_change(session, OUTBOX, user, password, new_email, NOW)
        assert refused.value.code == code
    for _ in range(2):  # the second request voids the first link
        async with db.transaction() as session:
            await me.request_email_change(session, OUTBOX, user, PASSWORD, "camille.martin@lycee.fr", NOW)
    first, second = await events(db, "EmailChangeRequested")
    assert (second["new_email"], second["account_id"]) == ("camille.martin@lycee.fr", str(account_id))
    assert isinstance(await log_in(db, "camille@lycee.fr", PASSWORD), Identity), "nothing changes before"
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await me.confirm_email_change(session, OUTBOX, first["confirmation_token"], NOW)
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await me.confirm_email_change(session, OUTBOX, second["confirmation_token"], NOW + timedelta(days=1))
    async with db.transaction() as session:
        assert await me.confirm_email_change(session, OUTBOX, second["confirmation_token"], NOW) == second["new_email"]
    assert isinstance(await log_in(db, "camille.martin@lycee.fr", PASSWORD), Identity)
    assert not isinstance(await log_in(db, "camille@lycee.fr", PASSWORD), Identity)
    [changed] = await events(db, "EmailChanged")
    assert (changed["old_email"], changed["new_email"]) == ("camille@lycee.fr", "camille.martin@lycee.fr")


async def test_the_old_address_undoes_a_change_it_did_not_make(db):
    account_id, user = await institution(db, "camille@lycee.fr")
    async with db.transaction() as session:  # someone who knew the password moves the account to their address
        await me.request_email_change(session, OUTBOX, user, PASSWORD, "intruder@example.fr", NOW)
    [requested] = await events(db, "EmailChangeRequested")
    async with db.transaction() as session:
        await me.confirm_email_change(session, OUTBOX, requested["confirmation_token"], NOW)
        intruder = await login(session, "intruder@example.fr", PASSWORD, "192.0.2.9", NOW)
        intruder_session, _ = await open_session(session, intruder, "192.0.2.9", NOW)
        intruders_token = await api_tokens.create_token(
            session, await access.actor(session, user), account_id, "Sortie", "read_write", NOW
        )
    [changed] = await events(db, "EmailChanged")
    assert changed["old_email"] == "camille@lycee.fr" and changed["revert_token"]
    later = NOW + timedelta(days=2)
    async with db.transaction() as session:
        assert await me.revert_email_change(session, OUTBOX, changed["revert_token"], later) == "camille@lycee.fr"
        assert await session_identity(session, intruder_session, later) is None, "every session ends"
        assert await api_tokens.token_identity(session, intruders_token["token"], later) is None, "and every token"
    for email in ("intruder@example.fr", "camille@lycee.fr"):
        assert not isinstance(await log_in(db, email, PASSWORD), Identity), "the known password no longer works"
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await me.revert_email_change(session, OUTBOX, changed["revert_token"], later)
    [reset] = await events(db, "PasswordResetRequested")
    assert (reset["email"], reset["account_id"]) == ("camille@lycee.fr", str(account_id))
    async with db.transaction() as session:
        await recovery.reset_password(session, OUTBOX, reset["reset_token"], NEW_PASSWORD, later)
    assert isinstance(await log_in(db, "camille@lycee.fr", NEW_PASSWORD), Identity)


async def test_a_revert_link_expires_after_seven_days(db):
    _, user = await institution(db, "camille@lycee.fr")
    async with db.transaction() as session:
        await me.request_email_change(session, OUTBOX, user, PASSWORD, "camille.m@lycee.fr", NOW)
    [requested] = await events(db, "EmailChangeRequested")
    async with db.transaction() as session:
        await me.confirm_email_change(session, OUTBOX, requested["confirmation_token"], NOW)
    [changed] = await events(db, "EmailChanged")
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await me.revert_email_change(session, OUTBOX, changed["revert_token"], NOW + me.REVERT_EMAIL_TTL)


async def test_an_address_taken_before_the_confirmation_is_refused(db):
    _, user = await institution(db, "camille@lycee.fr")
    async with db.transaction() as session:
        await me.request_email_change(session, OUTBOX, user, PASSWORD, "new@lycee.fr", NOW)
    await institution(db, "new@lycee.fr")
    [requested] = await events(db, "EmailChangeRequested")
    with pytest.raises(errors.EmailTaken):
        async with db.transaction() as session:
            await me.confirm_email_change(session, OUTBOX, requested["confirmation_token"], NOW)


async def test_name_and_language_settings(db):
    _, user = await institution(db, "camille@lycee.fr")
    async with db.transaction() as session:
        await me.update_settings(session, user, name="Camille Martin-Roux", language="en")
        row = (await session.execute(text("SELECT name, language FROM users WHERE id = :id"), {"id": user})).one()
    assert tuple(row) == ("Camille Martin-Roux", "en")


async def test_only_organisers_grant_the_organiser_role_and_one_remains(db):
    _, camille = await institution(db, "camille@lycee.fr")
    _, dora = await institution(db, "dora@lycee-b.fr")
    async with db.transaction() as session:
        with pytest.raises(errors.OrganisersOnly):
            await access.set_organiser(session, await access.actor(session, camille), dora, True)
        await access.set_organiser(session, None, camille, True)  # the command line's first organiser
        await access.set_organiser(session, await access.actor(session, camille), dora, True)
        await access.set_organiser(session, await access.actor(session, dora), camille, False)
        with pytest.raises(errors.LastOrganiser):
            await access.set_organiser(session, await access.actor(session, dora), dora, False)
        assert (await access.actor(session, dora)).is_organiser


async def test_organisers_list_the_organisers_and_grant_the_role_by_address(db):
    _, camille = await institution(db, "camille@lycee.fr")
    _, dora = await institution(db, "dora@lycee-b.fr")
    async with db.transaction() as session:
        for refused in (
            access.list_organisers(session, await access.actor(session, camille)),
            access.grant_organiser_by_email(session, await access.actor(session, camille), "dora@lycee-b.fr"),
            access.grant_organiser_by_email(session, await access.actor(session, camille), "nobody@lycee.fr"),
        ):
            with pytest.raises(errors.OrganisersOnly):  # before any lookup: no address is confirmed to a stranger
                await refused
        await access.set_organiser(session, None, camille, True)
        organiser = await access.actor(session, camille)
        assert await access.grant_organiser_by_email(session, organiser, "  Dora@Lycee-B.fr ") == dora
        with pytest.raises(errors.NotFound):
            await access.grant_organiser_by_email(session, organiser, "nobody@lycee.fr")
        listed = await access.list_organisers(session, organiser)
    assert {(row["user_id"], row["email"]) for row in listed} == {
        (camille, "camille@lycee.fr"),
        (dora, "dora@lycee-b.fr"),
    }


async def test_the_export_holds_the_account_and_its_people_without_secrets(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    await add(db, manager, account_id, ("Paul Durand", "paul@lycee.fr"))
    async with db.transaction() as session:
        export = await gdpr.export_account(session, await actor(db, manager), account_id, NOW)
    assert export["account"]["id"] == account_id and export["format"] == 2
    people = {person["email"]: person for person in export["people"]}
    assert set(people) == {"camille@lycee.fr", "paul@lycee.fr"}
    assert (people["camille@lycee.fr"]["status"], people["paul@lycee.fr"]["status"]) == ("active", "invited")
    assert people["paul@lycee.fr"]["emailed_links"][0]["purpose"] == members.INVITATION
    flat = repr(export)
    assert "argon2" not in flat and "token_hash" not in flat and "password_hash" not in flat
    [paul] = [p["user_id"] for p in export["people"] if p["email"] == "paul@lycee.fr"]
    async with db.transaction() as session:
        with pytest.raises(errors.Forbidden):
            await gdpr.export_account(session, access.Actor(paul, False, {account_id: "member"}), account_id, NOW)


async def test_closure_erases_people_keeps_invoice_data_and_frees_the_identifier(db):
    uai = new_uai()
    form = accounts.SignUp(
        "Lycée Hugo", "school", "Camille Martin", "camille@lycee.fr", PASSWORD, institution_identifier=uai
    )
    async with db.transaction() as session:
        account_id = await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
        manager = await session.scalar(text("SELECT id FROM users WHERE email = 'camille@lycee.fr'"))
        await session.execute(text("UPDATE users SET email_verified_at = now() WHERE id = :id"), {"id": manager})
        await session.execute(
            text("UPDATE institutions SET vat_number = 'FR40303265045', phone = '+33142345678', contact_name = 'C' ")
        )
    other, other_manager = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, manager, account_id, ("Paul", "paul@lycee.fr"), ("Dora", "dora@lycee-b.fr"))
    who = await actor(db, manager)
    with pytest.raises(errors.WrongPassword):
        async with db.transaction() as session:
            await gdpr.close_account(session, OUTBOX, who, account_id, NEW_PASSWORD, NOW)
    async with db.transaction() as session:
        await gdpr.close_account(session, OUTBOX, who, account_id, PASSWORD, NOW)
    async with db.transaction() as session:
        emails = set(await session.scalars(text("SELECT email FROM users")))
        kept = (await session.execute(text("SELECT * FROM institutions WHERE id = :id"), {"id": account_id})).one()
    assert emails == {"dora@lycee-b.fr"}, "Dora belongs to another institution and stays; the others are gone"
    assert (kept.name, kept.identifier, kept.vat_number) == ("Lycée Hugo", uai, "FR40303265045")
    assert (kept.phone, kept.contact_name, kept.closed_at) == (None, None, NOW)
    assert (await actor(db, other_manager)).roles == {other: "manager"}
    [closed] = await events(db, "AccountClosed")
    assert closed["notice_emails"] == ["camille@lycee.fr"] and closed["account_id"] == str(account_id)
    assert not isinstance(await log_in(db, "camille@lycee.fr", PASSWORD), Identity)
    async with db.transaction() as session:
        await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))


async def test_a_closed_account_takes_no_more_changes(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    _, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, manager, account_id, ("Dora", "dora@lycee-b.fr"))
    async with db.transaction() as session:
        await members.answer_invitation(session, dora, account_id, True, NOW)
        await members.set_role(session, await actor(db, manager), account_id, dora, "manager")
    async with db.transaction() as session:
        await gdpr.close_account(session, OUTBOX, await actor(db, dora), account_id, PASSWORD, NOW)
    with pytest.raises(errors.NotFound):  # its people are gone; for anyone else it does not exist either
        async with db.transaction() as session:
            await members.add_members(
                session, OUTBOX, await actor(db, dora), account_id, [MemberRow(1, "X", "x@x.fr")], NOW
            )


async def test_the_first_organiser_comes_from_the_command_line(db, fresh_database):
    _, camille = await institution(db, "camille@lycee.fr")
    env = {**os.environ, "ACCOUNTS_DATABASE_URL": fresh_database}
    command = [sys.executable, "-m", "accounts.admin", "grant-organiser", "Camille@lycee.fr"]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "camille@lycee.fr is now an organiser" in done.stdout, done.stderr
    assert (await actor(db, camille)).is_organiser
