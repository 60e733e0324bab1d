"""Limits against mail abuse and answers that do not tell who is registered, against a real PostgreSQL:
only verified managers invite; invitations per account and day, mails to one member per hour and sign-ups
per source are capped with the one throttle; a taken address is answered like a free one; reset requests
take the same time whether or not the address is known."""

import asyncio
import json
import statistics
import time
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from accounts import credentials, errors, me, members, recovery
from accounts import service as accounts
from accounts.csv_import import MemberRow
from accounts.settings import AccountsSettings
from accounts_world import NOW, OUTBOX, PASSWORD, actor, add, institution
from identifiers import new_uai

pytestmark = pytest.mark.infra

LIMITS = members.Limits(per_day=5, per_member=3)


def people(*emails):
    return [MemberRow(i, email.split("@")[0], email) for i, email in enumerate(emails, start=1)]


async def invite(db, manager, account_id, emails, now=NOW, limits=LIMITS):
    async with db.transaction() as session:
        who = await actor(db, manager)
        return await members.add_members(session, OUTBOX, who, account_id, people(*emails), now, limits=limits)


async def events(db, event_type):
    """The events of that type in the outbox, whatever their version."""
    async with db.transaction() as session:
        rows = await session.execute(text("SELECT value FROM outbox ORDER BY id"))
        return [json.loads(value) for (value,) in rows if json.loads(value)["type"] == event_type]


async def count(db, sql):
    async with db.transaction() as session:
        return await session.scalar(text(sql))


# --- the throttle ------------------------------------------------------------------------------------------


async def test_the_throttle_spends_several_attempts_all_or_nothing(db):
    policy = credentials.ThrottlePolicy(max_failures=5, window=timedelta(days=1), lockout=timedelta(days=1))
    async with db.transaction() as session:
        assert await credentials.spend(session, {"k": policy}, NOW, 3) is None
        refused = await credentials.spend(session, {"k": policy}, NOW + timedelta(hours=1), 3)
        assert refused == credentials.Exhausted(retry_after=timedelta(hours=23), remaining=2)
        assert await credentials.spend(session, {"k": policy}, NOW + timedelta(hours=1), 2) is None
        locked = await credentials.spend(session, {"k": policy}, NOW + timedelta(hours=2))
        assert locked == credentials.Exhausted(retry_after=timedelta(days=1) - timedelta(hours=1), remaining=0)
        assert await credentials.spend(session, {"k": policy}, NOW + timedelta(days=1, hours=1), 5) is None


# --- invitations -------------------------------------------------------------------------------------------


async def test_only_a_manager_with_a_verified_address_invites(db):
    account_id, manager = await institution(db, "camille@lycee.fr", verified=False)
    who = await actor(db, manager)
    with pytest.raises(errors.EmailNotVerified) as refused:
        await invite(db, manager, account_id, ["paul@lycee.fr"])
    assert (refused.value.status, refused.value.code) == (403, "email_not_verified")
    assert await count(db, "SELECT count(*) FROM users") == 1 and await events(db, "MemberInvited") == []
    async with db.transaction() as session:
        await session.execute(text("UPDATE users SET email_verified_at = now()"))
    [paul] = (await invite(db, manager, account_id, ["paul@lycee.fr"])).invited
    async with db.transaction() as session:
        await session.execute(text("UPDATE users SET email_verified_at = NULL WHERE id = :id"), {"id": manager})
    for attempt in (
        lambda s: members.resend_invitation(s, OUTBOX, who, account_id, paul, NOW),
        lambda s: members.correct_email(s, OUTBOX, who, account_id, paul, "paul.d@lycee.fr", NOW),
    ):
        with pytest.raises(errors.EmailNotVerified):
            async with db.transaction() as session:
                await attempt(session)
    assert len(await events(db, "MemberInvited")) == 1


async def test_an_account_invites_so_many_a_day_and_a_request_over_it_invites_nobody(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    await invite(db, manager, account_id, ["a@x.fr", "b@x.fr", "c@x.fr"])
    with pytest.raises(errors.InvitationLimit) as refused:
        await invite(db, manager, account_id, ["d@x.fr", "e@x.fr", "f@x.fr"], NOW + timedelta(hours=1))
    problem = refused.value
    assert (problem.status, problem.code) == (429, "invitation_limit")
    assert problem.members() == {"retry_after": 23 * 3600, "limit": 5, "remaining": 2, "requested": 3}
    assert await count(db, "SELECT count(*) FROM users") == 4, "nobody half-invited"
    assert await count(db, "SELECT count(*) FROM memberships") == 4
    assert len(await events(db, "MemberInvited")) == 3
    await invite(db, manager, account_id, ["d@x.fr", "e@x.fr"], NOW + timedelta(hours=1))
    with pytest.raises(errors.InvitationLimit) as refused:
        await invite(db, manager, account_id, ["f@x.fr"], NOW + timedelta(hours=2))
    assert refused.value.members()["remaining"] == 0
    await invite(db, manager, account_id, ["f@x.fr"], NOW + timedelta(days=1, hours=2))
    assert len(await events(db, "MemberInvited")) == 6


async def test_the_daily_limit_is_per_account_and_counts_sending_again(db):
    a, manager_a = await institution(db, "camille@lycee-a.fr")
    b, manager_b = await institution(db, "dora@lycee-b.fr", "Lycée B")
    [paul, *_] = (await invite(db, manager_a, a, ["paul@x.fr", "b@x.fr", "c@x.fr", "d@x.fr"])).invited
    await invite(db, manager_b, b, ["e@x.fr", "f@x.fr", "g@x.fr", "h@x.fr", "i@x.fr"])  # B has its own day
    async with db.transaction() as session:
        await members.resend_invitation(session, OUTBOX, await actor(db, manager_a), a, paul, NOW, limits=LIMITS)
    with pytest.raises(errors.InvitationLimit):
        async with db.transaction() as session:
            who = await actor(db, manager_a)
            await members.resend_invitation(session, OUTBOX, who, a, paul, NOW, limits=LIMITS)


async def test_a_member_gets_so_many_mails_an_hour_from_managers(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    [paul] = (await add(db, manager, account_id, ("Paul", "paul@lycee.fr"))).invited
    who = await actor(db, manager)
    limits = members.Limits(per_day=100, per_member=3)

    async def again(now):
        async with db.transaction() as session:
            await members.resend_invitation(session, OUTBOX, who, account_id, paul, now, limits=limits)

    for minute in range(3):
        await again(NOW + timedelta(minutes=minute))
    with pytest.raises(errors.MemberMailLimit) as refused:
        await again(NOW + timedelta(minutes=10))
    assert (refused.value.status, refused.value.code) == (429, "member_mail_limit")
    assert refused.value.members() == {"retry_after": 3600 - 8 * 60}
    with pytest.raises(errors.MemberMailLimit):  # correcting the address is sending again too
        async with db.transaction() as session:
            await members.correct_email(session, OUTBOX, who, account_id, paul, "p@lycee.fr", NOW, limits=limits)
    assert len(await events(db, "MemberInvited")) == 4
    await again(NOW + timedelta(hours=1, minutes=3))


async def test_manager_triggered_resets_are_limited_and_a_refused_one_keeps_the_last_link(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    paul = manager  # an active member of the account
    who = await actor(db, manager)

    async def reset(now):
        async with db.transaction() as session:
            await members.send_password_reset(session, OUTBOX, who, account_id, paul, now, limits=LIMITS)

    for second in range(3):
        await reset(NOW + timedelta(seconds=second))
    unused = "SELECT count(*) FROM action_tokens WHERE purpose = 'reset_password' AND used_at IS NULL"
    assert await count(db, unused) == 1
    for _ in range(5):
        with pytest.raises(errors.MemberMailLimit):
            await reset(NOW + timedelta(seconds=10))
    assert await count(db, unused) == 1, "the person's last link still works"
    assert len(await events(db, "PasswordResetRequested")) == 3


# --- sign-up -----------------------------------------------------------------------------------------------


def form(email, **changes):
    fields = {"institution_identifier": new_uai()} | changes
    return accounts.SignUp("Lycée Hugo", "school", "Camille Martin", email, PASSWORD, **fields)


async def sign_up(db, email, source="192.0.2.1", now=NOW):
    async with db.transaction() as session:
        return await accounts.sign_up(
            session, OUTBOX, form(email), verification_ttl=timedelta(hours=48), source=source, now=now
        )


async def test_sign_ups_are_limited_per_source(db):
    for i in range(5):
        await sign_up(db, f"a{i}@lycee.fr", now=NOW + timedelta(minutes=i))
    with pytest.raises(errors.TooManySignUps) as refused:
        await sign_up(db, "a5@lycee.fr", now=NOW + timedelta(minutes=10))
    assert (refused.value.status, refused.value.code) == (429, "too_many_sign_ups")
    assert refused.value.members() == {"retry_after": 3600 - 6 * 60}
    await sign_up(db, "b@lycee.fr", source="198.51.100.7", now=NOW + timedelta(minutes=10))
    await sign_up(db, "a5@lycee.fr", now=NOW + timedelta(hours=1, minutes=5))
    assert await count(db, "SELECT count(*) FROM institutions") == 7


async def test_a_taken_address_is_answered_like_a_new_one_and_its_owner_is_told(db):
    account_id = await sign_up(db, "camille@lycee.fr")
    other = await sign_up(db, "  CAMILLE@lycee.fr ", now=NOW + timedelta(minutes=1))
    assert other != account_id
    assert await count(db, "SELECT count(*) FROM institutions") == 1, "no account behind the answer"
    assert await count(db, "SELECT count(*) FROM users") == 1
    assert len(await events(db, "AccountRegistered")) == 1
    [told] = await events(db, "SignUpAttemptedWithTakenEmail")
    assert (told["email"], told["account_id"], told["language"]) == ("camille@lycee.fr", str(account_id), "fr")
    assert told["attempted_at"].startswith("2026-11-22T09:01")
    assert "Lycée" not in str(told), "nothing the other person typed reaches the owner"


async def test_a_taken_address_spends_the_sign_up_allowance_too(db):
    await sign_up(db, "camille@lycee.fr")
    for i in range(4):
        await sign_up(db, "camille@lycee.fr", now=NOW + timedelta(minutes=i))
    with pytest.raises(errors.TooManySignUps):
        await sign_up(db, "camille@lycee.fr", now=NOW + timedelta(minutes=5))
    assert len(await events(db, "SignUpAttemptedWithTakenEmail")) == 4


# --- email change ------------------------------------------------------------------------------------------


async def test_an_email_change_to_a_taken_address_is_answered_like_any_other(db):
    _, user = await institution(db, "camille@lycee.fr")
    await institution(db, "dora@lycee-b.fr", "Lycée B")
    async with db.transaction() as session:
        await me.request_email_change(session, OUTBOX, user, PASSWORD, "Dora@lycee-b.fr", NOW)
    [requested] = await events(db, "EmailChangeRequested")
    assert requested["new_email"] == "Dora@lycee-b.fr", "the link goes to that address, whose owner ignores it"
    assert await count(db, "SELECT count(*) FROM users WHERE email = 'camille@lycee.fr'") == 1, "nothing changed"


# --- the time of anonymous requests ------------------------------------------------------------------------


async def test_reset_requests_take_the_same_time_for_known_and_unknown_addresses(db):
    """Medians of interleaved samples through the floor the API uses (its default, 100 ms): unfloored, a known
    address costs about 2 ms more here. Each sample is in a fresh throttle window and from its own source, so
    that the known address is mailed every time.

    The floor hides only work shorter than itself: on a saturated machine (load far above its cores) the work
    itself outgrows it. A round counts when the floor held (both medians within 5 ms of it); one counted round
    in three must agree within 1 ms (noise seldom repeats, a real difference shows in every round). When no
    round counts, the machine is too loaded to measure and the test skips, saying so; the tests below check
    the mechanism (the floor, the same throttle statements) whatever the load."""
    await sign_up(db, "camille@lycee.fr")
    floor = timedelta(milliseconds=AccountsSettings().anonymous_mail_request_floor_ms)
    samples = 0

    async def sample(email):
        nonlocal samples
        samples += 1
        started = time.perf_counter()
        async with recovery.no_faster_than(floor), db.transaction() as session:
            when = NOW + timedelta(hours=2 * samples)
            await recovery.request_reset(session, OUTBOX, email, f"source-{samples}", when)
        return time.perf_counter() - started

    rounds, counted = [], []
    for _ in range(3):
        known, unknown = [], []
        for _ in range(20):
            known.append(await sample("camille@lycee.fr"))
            unknown.append(await sample("nobody@lycee.fr"))
        assert min(known + unknown) >= floor.total_seconds()
        medians = statistics.median(known), statistics.median(unknown)
        rounds.append([round(m * 1000, 1) for m in medians])
        if max(medians) < floor.total_seconds() + 0.005:
            counted.append(abs(medians[0] - medians[1]))
            if counted[-1] < 0.001:
                break
    assert len(await events(db, "PasswordResetRequested")) == 20 * len(rounds), "the known path mailed each time"
    if not counted:
        pytest.skip(f"too loaded to measure: the work outgrew the {floor} floor (medians, ms: {rounds})")
    assert min(counted) < 0.001, f"medians (known, unknown) differ, in ms: {rounds}"


async def reset_request(session, email, now):
    await recovery.request_reset(session, OUTBOX, email, "203.0.113.9", now)


async def resend_request(session, email, now):
    await accounts.resend_verification(session, OUTBOX, email, "203.0.113.9", now, verification_ttl=timedelta(hours=48))


@pytest.mark.parametrize("request_mail", [reset_request, resend_request])
async def test_known_and_unknown_addresses_run_the_same_throttle_statements(db, request_mail):
    await sign_up(db, "camille@lycee.fr")  # not verified: a verification link can be resent
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "login_throttle" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        runs = []
        for email in ("camille@lycee.fr", "nobody@lycee.fr"):
            statements.clear()
            async with db.transaction() as session:
                await request_mail(session, email, NOW + timedelta(hours=2 * len(runs)))
            runs.append(list(statements))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    assert runs[0] == runs[1] and runs[0]
    mails = await events(db, "PasswordResetRequested") + await events(db, "VerificationLinkRequested")
    assert len(mails) == 1, "the known address was mailed"


async def test_the_floor_holds_a_fast_answer_and_a_failing_one():
    for fail in (False, True):
        started = time.perf_counter()
        with pytest.raises(RuntimeError) if fail else nullcontext():
            async with recovery.no_faster_than(timedelta(milliseconds=30)):
                if fail:
                    raise RuntimeError
        assert time.perf_counter() - started >= 0.03


async def test_concurrent_invitations_cannot_overdraw_the_day(db):
    account_id, manager = await institution(db, "camille@lycee.fr")
    outcomes = await asyncio.gather(
        invite(db, manager, account_id, ["a@x.fr", "b@x.fr", "c@x.fr"]),
        invite(db, manager, account_id, ["d@x.fr", "e@x.fr", "f@x.fr"]),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Added", "InvitationLimit"]
    assert len(await events(db, "MemberInvited")) == 3
