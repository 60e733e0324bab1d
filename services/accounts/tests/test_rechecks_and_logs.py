"""Password re-checks behind a session are throttled as login is (finding 5), database errors never put
their parameters in a log line (finding 6), and security events are logged without secrets (finding 9)."""

import io
import json
import logging
import uuid

import pytest
from sqlalchemy import insert

from accounts import access, errors, gdpr, me, members
from accounts.credentials import PER_EMAIL, Identity, login
from accounts.models import users
from accounts_world import NOW, OUTBOX, PASSWORD, actor, add, events, institution
from servicekit.logs import JsonFormatter

pytestmark = pytest.mark.infra

WRONG = "certainly not the right passphrase"
NEW_PASSWORD = "amber lighthouse beyond twelve dunes"


@pytest.fixture
def log_lines():
    """Everything logged while the test runs, as the services format it (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("accounts"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def rechecks(account_id, user):
    """The three re-checks, each as a function of the password given and the time."""

    async def password(session, given, now):
        await me.change_password(session, OUTBOX, user, given, NEW_PASSWORD, now)

    async def email(session, given, now):
        await me.request_email_change(session, OUTBOX, user, given, f"new-{uuid.uuid4().hex[:6]}@lycee.fr", now)

    async def closure(session, given, now):
        await gdpr.close_account(session, OUTBOX, await access.actor(session, user), account_id, given, now)

    return {"password_change": password, "email_change": email, "account_closure": closure}


@pytest.mark.parametrize("action", ["password_change", "email_change", "account_closure"])
async def test_wrong_passwords_on_a_recheck_lock_it_like_login(db, action, log_lines):
    email = f"camille-{action}@lycee.fr"
    account_id, user = await institution(db, email)
    check = rechecks(account_id, user)[action]
    for _ in range(PER_EMAIL.max_failures):
        with pytest.raises(errors.WrongPassword):
            async with db.transaction() as session:
                await check(session, WRONG, NOW)
    with pytest.raises(errors.TooManyPasswordAttempts) as locked:  # even the right password, until it passes
        async with db.transaction() as session:
            await check(session, PASSWORD, NOW)
    assert locked.value.status == 429 and 0 < locked.value.retry_after <= PER_EMAIL.lockout.total_seconds()
    async with db.transaction() as session:  # one throttle: login is locked for this user too
        refused = await login(session, email, PASSWORD, "192.0.2.9", NOW)
    assert not isinstance(refused, Identity) and refused.reason == "too_many_attempts"
    async with db.transaction() as session:
        await check(session, PASSWORD, NOW + PER_EMAIL.lockout)

    events = [line for line in log_lines() if "security_event" in line]
    failed = [e for e in events if e["security_event"] == "password_recheck_failed"]
    assert len(failed) == PER_EMAIL.max_failures and failed[-1]["outcome"] == "locked"
    assert {e["action"] for e in failed} == {action} and {e["user_id"] for e in failed} == {str(user)}
    assert any(e["security_event"] == "password_recheck_locked" for e in events)
    assert not any(PASSWORD in json.dumps(e) or WRONG in json.dumps(e) or email in json.dumps(e) for e in events)


async def test_a_database_error_logs_no_parameter(db, log_lines):
    marker_email = "marker.person@leak-check.fr"
    marker_hash = "$argon2id$v=19$m=19456,t=2,p=1$MARKERSALT$MARKERHASHVALUE"
    row = {"email": marker_email, "name": "Marker Unique-Name", "password_hash": marker_hash}
    async with db.transaction() as session:
        await session.execute(insert(users).values(id=uuid.uuid4(), **row))
    with pytest.raises(Exception) as failed:  # the same address again: a unique violation
        async with db.transaction() as session:
            await session.execute(insert(users).values(id=uuid.uuid4(), **row))
    assert marker_hash not in str(failed.value), "the engine hides statement parameters"
    log = logging.getLogger("accounts.test")
    try:
        raise RuntimeError("while handling a request") from failed.value
    except RuntimeError:
        log.exception("unhandled error")
    log.warning("integrity error: %s", failed.value.orig)
    log.warning("failed (%r); retrying", failed.value)
    lines = log_lines()
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for secret in (marker_email, marker_hash, "MARKERHASHVALUE", "Marker Unique-Name"):
        assert secret not in text
    assert "23505" in text and "users_email_unique" in text, "the kind of error still shows"
    assert "Traceback" in lines[0]["exception"]


async def test_each_kind_of_security_event_is_logged_with_ids_and_no_secret(db, log_lines):
    a, camille = await institution(db, "camille@lycee-a.fr", "Lycée A")
    b, dora = await institution(db, "dora@lycee-b.fr", "Lycée B")
    for _ in range(PER_EMAIL.max_failures):
        async with db.transaction() as session:
            await login(session, "dora@lycee-b.fr", WRONG, "203.0.113.5", NOW)
    async with db.transaction() as session:
        await login(session, "dora@lycee-b.fr", PASSWORD, "203.0.113.5", NOW)  # locked
        await login(session, "nobody@lycee-b.fr", WRONG, "203.0.113.6", NOW)
        await login(session, "camille@lycee-a.fr", PASSWORD, "203.0.113.7", NOW)
    async with db.transaction() as session:
        await me.change_password(session, OUTBOX, camille, PASSWORD, NEW_PASSWORD, NOW)
        await me.request_email_change(session, OUTBOX, camille, NEW_PASSWORD, "camille.m@lycee-a.fr", NOW)
    [change] = await events(db, "EmailChangeRequested")
    async with db.transaction() as session:
        await me.confirm_email_change(session, OUTBOX, change["confirmation_token"], NOW)
    await add(db, dora, b, ("Camille", "camille.m@lycee-a.fr"))
    async with db.transaction() as session:
        await members.answer_invitation(session, camille, b, True, NOW)
        who = await access.actor(session, dora)
        await members.set_role(session, who, b, camille, "manager")
        await members.remove_member(session, OUTBOX, who, b, camille, NOW)
        await access.set_organiser(session, None, camille, True)
    async with db.transaction() as session:
        await gdpr.close_account(session, OUTBOX, await actor(db, camille), a, NEW_PASSWORD, NOW)

    logged = [line for line in log_lines() if "security_event" in line]
    by_name: dict[str, list[dict]] = {}
    for line in logged:
        by_name.setdefault(line["security_event"], []).append(line)
    failed = by_name["login_failed"]
    assert [e["outcome"] for e in failed] == ["refused"] * 4 + ["locked", "refused"]
    assert failed[0]["user_id"] == str(dora) and failed[0]["source"] == "203.0.113.5"
    assert failed[-1].get("unknown_user") is True and "user_id" not in failed[-1]
    assert by_name["login_refused_while_locked"][0]["source"] == "203.0.113.5"
    assert by_name["login_succeeded"][0]["user_id"] == str(camille)
    assert (
        by_name["password_changed"][0] | {"how": "self_service", "user_id": str(camille)}
        == by_name["password_changed"][0]
    )
    assert {"email_change_requested", "email_changed", "membership_accepted"} <= set(by_name)
    role = by_name["role_changed"][0]
    assert (role["user_id"], role["account_id"], role["target_user_id"], role["outcome"], role["previous_role"]) == (
        str(dora),
        str(b),
        str(camille),
        "manager",
        "member",
    )
    assert by_name["member_removed"][0]["target_user_id"] == str(camille)
    assert by_name["organiser_role_changed"][0]["outcome"] == "granted"
    closed = by_name["account_closed"][0]
    assert (closed["user_id"], closed["account_id"]) == (str(camille), str(a))
    assert all(line["level"] == "warning" and line["logger"] == "security" for line in logged)
    text = json.dumps(logged, ensure_ascii=False)
    for secret in (PASSWORD, NEW_PASSWORD, WRONG, change["confirmation_token"], "Camille Martin", "@lycee"):
        assert secret not in text
