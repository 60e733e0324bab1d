"""Staff members against a real PostgreSQL: adding, importing, inviting, correcting, roles, removal, and
the rule that nobody acts on another institution's people."""

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from accounts import errors, members
from accounts.credentials import Identity, login
from accounts.csv_import import MemberRow, parse_members_csv
from accounts_world import MEMBER_PASSWORD, NOW, OUTBOX, actor, add, events, institution, invitation_token
from member_csv import build_5000_rows

pytestmark = pytest.mark.infra


async def test_new_people_are_invited_and_set_their_password_with_the_link(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    added = await add(db, manager, account_id, ("Paul Durand", "paul@lycee.fr"), ("Léa Roux", "lea@lycee.fr"))
    assert (len(added.invited), added.already_members) == (2, [])
    invitation = next(e for e in await events(db, "MemberInvited") if e["email"] == "paul@lycee.fr")
    assert invitation["institution_name"] == "Lycée Hugo" and invitation["name"] == "Paul Durand"
    async with db.transaction() as session:
        page = await members.list_members(session, await actor(db, manager), account_id)
    assert page["counts"] == {"total": 3, "active": 1, "invited": 2, "managers": 1}
    assert [(m["name"], m["status"]) for m in page["members"]][:2] == [
        ("Camille Martin", "active"),
        ("Léa Roux", "invited"),
    ]

    async with db.transaction() as session:
        refused = await login(session, "paul@lycee.fr", MEMBER_PASSWORD, "192.0.2.1", NOW)
        assert not isinstance(refused, Identity), "no password before the invitation is accepted"
    with pytest.raises(errors.InvalidField):
        async with db.transaction() as session:
            await members.accept_invitation(session, invitation["invitation_token"], "paul durand 2026", NOW)
    async with db.transaction() as session:
        await members.accept_invitation(session, invitation["invitation_token"], MEMBER_PASSWORD, NOW)
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await members.accept_invitation(session, invitation["invitation_token"], MEMBER_PASSWORD, NOW)
    async with db.transaction() as session:
        identity = await login(session, "paul@lycee.fr", MEMBER_PASSWORD, "192.0.2.1", NOW)
    assert isinstance(identity, Identity) and identity.email_verified
    assert identity.memberships == {account_id: "member"}


async def test_an_expired_invitation_is_refused(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    await add(db, manager, account_id, ("Paul Durand", "paul@lycee.fr"))
    token = await invitation_token(db, "paul@lycee.fr")
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await members.accept_invitation(session, token, MEMBER_PASSWORD, NOW + members.INVITATION_TTL)


async def test_a_known_identity_is_asked_to_join_and_members_are_not_added_twice(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    added = await add(db, manager_b, b, ("Camille M.", "CAMILLE@lycee-a.fr"), ("Dora", "dora@lycee-b.fr"))
    assert added.invited == [manager_a] and len(added.already_members) == 1
    [request] = await events(db, "MemberAdded")
    assert (request["email"], request["institution_name"], request["name"]) == (
        "camille@lycee-a.fr",
        "Lycée B",
        "Camille Martin",
    )
    assert (await actor(db, manager_a)).roles == {a: "manager"}, "she joins once she accepts (test_joining.py)"
    assert len((await add(db, manager_b, b, ("Camille M.", "camille@lycee-a.fr"))).already_members) == 1


async def test_an_invited_identity_invited_again_elsewhere_gets_a_new_invitation(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, manager_a, a, ("Paul", "paul@example.fr"))
    added = await add(db, manager_b, b, ("Paul", "paul@example.fr"))
    assert len(added.invited) == 1
    tokens = [e["invitation_token"] for e in await events(db, "MemberInvited")]
    async with db.transaction() as session:
        await members.accept_invitation(session, tokens[1], MEMBER_PASSWORD, NOW)
    with pytest.raises(errors.InvalidToken):  # the other invitation's link is void: the password is set
        async with db.transaction() as session:
            await members.accept_invitation(session, tokens[0], "another long enough phrase", NOW)


async def test_the_5000_row_file_imports_4963_members_and_reports_37_rows(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    data, expected, good = build_5000_rows()
    started = time.perf_counter()
    report = parse_members_csv(data)
    async with db.transaction() as session:
        who = await actor(db, manager)
        limits = members.Limits(per_day=5000)  # a deployment that imports big files raises the daily limit
        added = await members.add_members(session, OUTBOX, who, account_id, report.rows, NOW, limits=limits)
    elapsed = time.perf_counter() - started
    assert len(added.invited) == good == 4963
    assert [(error.line, error.code) for error in report.errors] == expected and len(expected) == 37
    async with db.transaction() as session:
        page = await members.list_members(session, await actor(db, manager), account_id, limit=10)
        assert page["counts"] == {"total": 4964, "active": 1, "invited": 4963, "managers": 1}
        assert len(page["members"]) == 10
        tokens = await session.scalar(text("SELECT count(*) FROM action_tokens WHERE purpose = 'accept_invitation'"))
        assert tokens == 4963
    assert len(await events(db, "MemberInvited")) == 4963
    print(f"5,000-row import: parse + add in {elapsed:.2f} s")  # the figure is tests/bench/member_import.py's


async def test_a_manager_corrects_an_invited_members_address_and_the_invitation_follows(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    added = await add(db, manager, account_id, ("Paul Durand", "paul@lyce.fr"))
    [paul] = added.invited
    old_token = await invitation_token(db, "paul@lyce.fr")
    who = await actor(db, manager)
    async with db.transaction() as session:
        member = await members.correct_email(session, OUTBOX, who, account_id, paul, "paul@lycee.fr", NOW)
    assert (member["email"], member["status"]) == ("paul@lycee.fr", "invited")
    new_token = await invitation_token(db, "paul@lycee.fr")
    with pytest.raises(errors.InvalidToken):
        async with db.transaction() as session:
            await members.accept_invitation(session, old_token, MEMBER_PASSWORD, NOW)
    for wrong, code in (("not-an-email", "email_invalid"), ("camille@lycee.fr", "email_taken")):
        with pytest.raises(errors.AccountsError) as refused:
            async with db.transaction() as session:
                await members.correct_email(session, OUTBOX, who, account_id, paul, wrong, NOW)
        assert refused.value.code == code
    async with db.transaction() as session:
        await members.accept_invitation(session, new_token, MEMBER_PASSWORD, NOW)
    with pytest.raises(errors.MemberActive):
        async with db.transaction() as session:
            await members.correct_email(session, OUTBOX, who, account_id, paul, "paul.d@lycee.fr", NOW)


async def test_reset_and_reinvitation_go_to_the_right_kind_of_member(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    [paul] = (await add(db, manager, account_id, ("Paul", "paul@lycee.fr"))).invited
    who = await actor(db, manager)
    with pytest.raises(errors.MemberInvited):
        async with db.transaction() as session:
            await members.send_password_reset(session, OUTBOX, who, account_id, paul, NOW)
    async with db.transaction() as session:
        await members.resend_invitation(session, OUTBOX, who, account_id, paul, NOW)
    assert len([e for e in await events(db, "MemberInvited") if e["email"] == "paul@lycee.fr"]) == 2
    async with db.transaction() as session:
        await members.accept_invitation(session, await invitation_token(db, "paul@lycee.fr"), MEMBER_PASSWORD, NOW)
        await members.send_password_reset(session, OUTBOX, who, account_id, paul, NOW)
    [reset] = await events(db, "PasswordResetRequested")
    assert reset["email"] == "paul@lycee.fr" and reset["account_id"] == str(account_id)
    with pytest.raises(errors.MemberActive):
        async with db.transaction() as session:
            await members.resend_invitation(session, OUTBOX, who, account_id, paul, NOW)


async def test_roles_and_removal_keep_a_manager(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    paul, lea = (await add(db, manager, account_id, ("Paul", "paul@lycee.fr"), ("Léa", "lea@lycee.fr"))).invited
    who = await actor(db, manager)
    for attempt in (
        lambda s: members.set_role(s, who, account_id, manager, "member"),
        lambda s: members.remove_member(s, OUTBOX, who, account_id, manager, NOW),
    ):
        with pytest.raises(errors.LastManager):
            async with db.transaction() as session:
                await attempt(session)
    async with db.transaction() as session:
        assert (await members.set_role(session, who, account_id, paul, "manager"))["role"] == "manager"
        await members.remove_member(session, OUTBOX, who, account_id, lea, NOW)
        assert await session.scalar(text("SELECT count(*) FROM users WHERE email = 'lea@lycee.fr'")) == 0
    with pytest.raises(errors.LastManager):  # Paul manages once he has accepted, not before
        async with db.transaction() as session:
            await members.set_role(session, who, account_id, manager, "member")
    async with db.transaction() as session:
        await members.accept_invitation(session, await invitation_token(db, "paul@lycee.fr"), MEMBER_PASSWORD, NOW)
    async with db.transaction() as session:
        await members.set_role(session, who, account_id, manager, "member")  # Paul is a manager now
    assert (await actor(db, manager)).roles == {account_id: "member"}
    [removed] = await events(db, "MemberRemoved")
    assert removed["member_id"] == str(lea)


async def test_a_removed_identity_with_a_password_stays_for_its_other_institution(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    await add(db, manager_b, b, ("Camille", "camille@lycee-a.fr"))
    async with db.transaction() as session:
        await members.remove_member(session, OUTBOX, await actor(db, manager_b), b, manager_a, NOW)
    assert (await actor(db, manager_a)).roles == {a: "manager"}


async def test_members_and_organisers_do_not_manage_and_nobody_reaches_another_institution(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    [member_a] = (await add(db, manager_a, a, ("Paul", "paul@lycee-a.fr"))).invited
    [member_b] = (await add(db, manager_b, b, ("Zoé", "zoe@lycee-b.fr"))).invited
    async with db.transaction() as session:
        await session.execute(text("UPDATE users SET is_organiser = true WHERE id = :id"), {"id": member_a})
    from_a = await actor(db, manager_a)
    actions = {
        "list": lambda s, w, acc, m: members.list_members(s, w, acc),
        "add": lambda s, w, acc, m: members.add_members(s, OUTBOX, w, acc, [MemberRow(1, "X", "x@x.fr")], NOW),
        "read": lambda s, w, acc, m: members.read_member(s, w, acc, m),
        "correct": lambda s, w, acc, m: members.correct_email(s, OUTBOX, w, acc, m, "y@lycee.fr", NOW),
        "reinvite": lambda s, w, acc, m: members.resend_invitation(s, OUTBOX, w, acc, m, NOW),
        "reset": lambda s, w, acc, m: members.send_password_reset(s, OUTBOX, w, acc, m, NOW),
        "role": lambda s, w, acc, m: members.set_role(s, w, acc, m, "manager"),
        "remove": lambda s, w, acc, m: members.remove_member(s, OUTBOX, w, acc, m, NOW),
    }
    for name, action in actions.items():
        targets = [(b, member_b), (b, manager_b)] + ([] if name in ("list", "add") else [(a, member_b)])
        for account_id, member_id in targets:
            with pytest.raises(errors.NotFound):
                async with db.transaction() as session:
                    await action(session, from_a, account_id, member_id)
    organiser = await actor(db, member_a)  # an organiser and a plain member of A
    async with db.transaction() as session:
        assert (await members.list_members(session, organiser, b))["counts"]["total"] == 2
    for name, action in actions.items():
        if name == "list":
            continue
        with pytest.raises(errors.Forbidden):
            async with db.transaction() as session:
                await action(session, organiser, a, member_a)


async def wait_for_a_lock_wait(db, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.transaction() as session:  # a new transaction each time: activity is a snapshot per transaction
            if await session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no session waited on a lock")


async def test_two_institutions_adding_the_same_new_address_at_once_leave_one_identity(db):
    """One account's changes are serial (its row is locked); two accounts racing for one new address meet the
    unique index: the second fails whole (the API answers 409 conflict) and a retry invites the same person."""
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    paul = [MemberRow(2, "Paul", "paul@example.fr")]
    who_a, who_b = await actor(db, manager_a), await actor(db, manager_b)

    async def add_for_b():
        async with db.transaction() as session:
            return await members.add_members(session, OUTBOX, who_b, b, paul, NOW)

    async with db.transaction() as session:
        await members.add_members(session, OUTBOX, who_a, a, paul, NOW)
        racing = asyncio.create_task(add_for_b())
        await wait_for_a_lock_wait(db)  # B waits on the unique index entry A holds
    with pytest.raises(IntegrityError):
        await racing
    async with db.transaction() as session:
        assert await session.scalar(text("SELECT count(*) FROM users WHERE email = 'paul@example.fr'")) == 1
    retried = await add(db, manager_b, b, ("Paul", "paul@example.fr"))
    assert len(retried.invited) == 1
