"""Joining another institution needs the person's acceptance (finding 4): an institution that adds an address
with an identity sees only what it typed until the person accepts, its answers are the same for known and
unknown addresses, and its GDPR export holds only what belongs to it."""

import pytest
from sqlalchemy import text

from accounts import errors, gdpr, members
from accounts.credentials import Identity, login, open_session
from accounts_world import MEMBER_PASSWORD, NOW, OUTBOX, PASSWORD, actor, add, events, institution

pytestmark = pytest.mark.infra


async def link(db, event_type, field, email):
    """The raw token of the last `event_type` mailed to `email`."""
    [event] = [e for e in await events(db, event_type) if e["email"] == email][-1:]
    return event[field]


async def page(db, manager, account_id):
    async with db.transaction() as session:
        return await members.list_members(session, await actor(db, manager), account_id)


async def test_a_known_identity_is_asked_to_join_and_the_account_sees_only_what_it_typed(db):
    a, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    added = await add(db, dora, b, ("C. M.", "CAMILLE@lycee-a.fr"), ("Paul", "paul@lycee-b.fr"))
    assert len(added.invited) == 2 and added.already_members == []
    assert not hasattr(added, "joined"), "known and unknown addresses are answered alike"
    [request] = await events(db, "MemberAdded")
    assert (request["email"], request["institution_name"], request["name"]) == (
        "camille@lycee-a.fr",
        "Lycée B",
        "Camille Martin",
    ), "the mail greets the person by their own name; it goes to them, not to Lycée B"
    assert request["join_token"] and request["expires_at"]
    assert (await actor(db, camille)).roles == {a: "manager"}, "not a member of B before accepting"

    before = await page(db, dora, b)
    typed = next(m for m in before["members"] if m["member_id"] == camille)
    assert (typed["name"], typed["email"], typed["status"]) == ("C. M.", "CAMILLE@lycee-a.fr", "invited")
    others = [m for m in before["members"] if m["member_id"] != dora]  # Dora's own name is Camille Martin too
    assert "Camille Martin" not in repr(others) and "camille@lycee-a.fr" not in repr(before)
    assert before["counts"] == {"total": 3, "active": 1, "invited": 2, "managers": 1}
    async with db.transaction() as session:
        assert (await members.read_member(session, await actor(db, dora), b, camille))["name"] == "C. M."
        export = await gdpr.export_account(session, await actor(db, dora), b, NOW)
    assert "camille@lycee-a.fr" not in repr(export)
    [asked] = [p for p in export["people"] if p["user_id"] == camille]
    assert (asked["name"], asked["status"], "language" in asked) == ("C. M.", "invited", False)

    async with db.transaction() as session:
        assert (
            await members.accept_join_request(
                session, await link(db, "MemberAdded", "join_token", "camille@lycee-a.fr"), NOW
            )
            == b
        )
    assert (await actor(db, camille)).roles == {a: "manager", b: "member"}
    after = next(m for m in (await page(db, dora, b))["members"] if m["member_id"] == camille)
    assert (after["name"], after["email"], after["status"]) == ("Camille Martin", "camille@lycee-a.fr", "active")
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await members.accept_join_request(
                session, await link(db, "MemberAdded", "join_token", "camille@lycee-a.fr"), NOW
            )


async def test_a_person_accepts_or_declines_from_their_account(db):
    _, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"))
    async with db.transaction() as session:
        [pending] = await members.pending_invitations(session, camille)
    assert (pending["account_id"], pending["institution_name"]) == (b, "Lycée B")
    token = await link(db, "MemberAdded", "join_token", "camille@lycee-a.fr")
    async with db.transaction() as session:
        await members.answer_invitation(session, camille, b, False, NOW)
    assert camille not in {m["member_id"] for m in (await page(db, dora, b))["members"]}
    with pytest.raises(errors.InvalidToken):  # declined: the mailed link is void too
        async with db.transaction() as session:
            await members.accept_join_request(session, token, NOW)
    with pytest.raises(errors.NotFound):
        async with db.transaction() as session:
            await members.answer_invitation(session, camille, b, True, NOW)

    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"))
    async with db.transaction() as session:
        await members.answer_invitation(session, camille, b, True, NOW)
        assert await members.pending_invitations(session, camille) == []
    assert (await actor(db, camille)).roles[b] == "member"
    async with db.transaction() as session:
        identity = await login(session, "camille@lycee-a.fr", PASSWORD, "192.0.2.1", NOW)
    assert isinstance(identity, Identity) and b in identity.memberships


async def test_an_account_cannot_act_on_someone_who_has_not_accepted(db):
    a, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"), ("Paul", "paul@lycee-b.fr"))
    paul = next(m["member_id"] for m in (await page(db, dora, b))["members"] if m["name"] == "Paul")
    who = await actor(db, dora)
    for member in (camille, paul):  # the same refusal for a known identity and a new person
        with pytest.raises(errors.MemberInvited):
            async with db.transaction() as session:
                await members.send_password_reset(session, OUTBOX, who, b, member, NOW)
        async with db.transaction() as session:
            await members.resend_invitation(session, OUTBOX, who, b, member, NOW)
    assert len(await events(db, "MemberAdded")) == 2 and len(await events(db, "MemberInvited")) == 2

    async with db.transaction() as session:  # a wrong address corrected: the request moves, the identity stays
        moved = await members.correct_email(session, OUTBOX, who, b, camille, "camille.m@lycee-b.fr", NOW)
    assert (moved["email"], moved["status"]) == ("camille.m@lycee-b.fr", "invited") and moved["member_id"] != camille
    async with db.transaction() as session:
        assert await session.scalar(text("SELECT email FROM users WHERE id = :id"), {"id": camille}) == (
            "camille@lycee-a.fr"
        )
        assert await members.pending_invitations(session, camille) == []
    assert (await actor(db, camille)).roles == {a: "manager"}

    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"))
    async with db.transaction() as session:
        await members.remove_member(session, OUTBOX, who, b, camille, NOW)
    with pytest.raises(errors.InvalidToken):  # withdrawn: the link does nothing
        async with db.transaction() as session:
            await members.accept_join_request(
                session, await link(db, "MemberAdded", "join_token", "camille@lycee-a.fr"), NOW
            )
    async with db.transaction() as session:
        assert isinstance(await login(session, "camille@lycee-a.fr", PASSWORD, "192.0.2.1", NOW), Identity)


async def test_an_invitation_joins_only_the_institution_that_sent_it(db):
    a, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, camille, a, ("Paul Durand", "paul@example.fr"))
    await add(db, dora, b, ("P. Durand", "paul@example.fr"))
    invitations = [e for e in await events(db, "MemberInvited") if e["email"] == "paul@example.fr"]
    assert [(e["account_id"], e["name"]) for e in invitations] == [(str(a), "Paul Durand"), (str(b), "P. Durand")]
    paul = invitations[0]["member_id"]
    async with db.transaction() as session:
        await members.accept_invitation(session, invitations[1]["invitation_token"], MEMBER_PASSWORD, NOW)
    assert (await actor(db, paul)).roles == {b: "member"}
    async with db.transaction() as session:
        [pending] = await members.pending_invitations(session, paul)
        assert pending["account_id"] == a
        await members.answer_invitation(session, paul, a, True, NOW)
    assert (await actor(db, paul)).roles == {a: "member", b: "member"}


async def test_the_export_holds_only_what_belongs_to_the_account(db):
    a, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    async with db.transaction() as session:
        identity = await login(session, "camille@lycee-a.fr", PASSWORD, "198.51.100.7", NOW)
        await open_session(session, identity, "198.51.100.7", NOW)
    await add(db, camille, a, ("Paul", "paul@example.fr"))
    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"), ("Paul", "paul@example.fr"))
    async with db.transaction() as session:
        await members.answer_invitation(session, camille, b, True, NOW)
        export_b = await gdpr.export_account(session, await actor(db, dora), b, NOW)
        export_a = await gdpr.export_account(session, await actor(db, camille), a, NOW)
    assert export_b["format"] == 2
    flat = repr(export_b)
    assert "198.51.100.7" not in flat and "sessions" not in flat, "sessions are the person's, not the account's"
    people = {p["user_id"]: p for p in export_b["people"]}
    assert {link["purpose"] for link in people[camille]["emailed_links"]} == {members.JOIN}
    paul = next(user for user, p in people.items() if p["email"] == "paul@example.fr")
    assert [link["purpose"] for link in people[paul]["emailed_links"]] == [members.INVITATION], "not A's link"
    assert people[paul]["status"] == "invited" and people[camille]["status"] == "active"
    people_a = {p["user_id"]: p for p in export_a["people"]}
    assert [link["purpose"] for link in people_a[paul]["emailed_links"]] == [members.INVITATION]
    assert all(link["purpose"] != members.JOIN for link in people_a[camille]["emailed_links"])
    assert "argon2" not in flat and "token_hash" not in flat and "is_organiser" not in flat


async def test_closing_an_account_never_erases_someone_who_did_not_accept(db):
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    _, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    async with db.transaction() as session:  # Camille left Lycée A but kept her identity (a password)
        await session.execute(text("DELETE FROM memberships WHERE user_id = :id"), {"id": camille})
    await add(db, dora, b, ("Camille", "camille@lycee-a.fr"))
    async with db.transaction() as session:
        await gdpr.close_account(session, OUTBOX, await actor(db, dora), b, PASSWORD, NOW)
    async with db.transaction() as session:
        assert isinstance(await login(session, "camille@lycee-a.fr", PASSWORD, "192.0.2.1", NOW), Identity)
