"""The internal API on a real PostgreSQL (no Kafka: the outbox only): 202 with id and status, another account's
enrolment as 404, refusals as 409 problems with their code, bad input as 400."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar.di import Provide
from sqlalchemy import select, update

from contracts.events.catalogue import SessionScheduled
from enrollment import links, links_api
from enrollment import service as rules
from enrollment.api import CONTROLLERS, EXCEPTION_HANDLERS
from enrollment.models import enrolments, participation_links, sessions
from enrollment.service import Rules
from enrollment.settings import EnrollmentSettings
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox
from servicekit.runtime import Service, build_http_app


@pytest.fixture
async def client(fresh_database):  # type: ignore[no-untyped-def]
    db = Database(fresh_database, pool_size=5)
    await upgrade(db, "enrollment")
    fake = Service.__new__(Service)  # what the routes use of a Service, without Kafka
    fake.db, fake.outbox, fake.settings = db, Outbox("enrollment"), EnrollmentSettings()
    app = build_http_app(
        "enrollment",
        CONTROLLERS + links_api.CONTROLLERS,
        checks={},
        dependencies={"service": Provide(lambda: fake, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # on the test's own event loop (the database's pool belongs to it), unlike Litestar's test client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://enrollment") as test_client:
        test_client.db = db  # type: ignore[attr-defined]
        yield test_client
    await db.dispose()


async def new_session(db: Database, capacity: int = 1, starts_in: timedelta = timedelta(days=10)) -> str:
    event = SessionScheduled(
        session_id=uuid.uuid4(),
        theme_id=uuid.uuid4(),
        title="Pronote",
        starts_at=datetime.now(UTC) + starts_in,
        duration_minutes=60,
        capacity=capacity,
        provider="bbb",
    )
    async with db.transaction() as session:
        await rules.session_terms(session, event, Rules(), datetime.now(UTC))
    return str(event.session_id)


async def test_enrol_read_list_cancel_and_the_waiting_list(client) -> None:  # type: ignore[no-untyped-def]
    session_id = await new_session(client.db)
    account, other = str(uuid.uuid4()), str(uuid.uuid4())
    notice = {"email": "claire@example.fr", "name": "Claire", "language": "en"}
    body = {
        "account_id": account,
        "session_id": session_id,
        "expected_participants": 4,
        "questions": "Q ?\nR.",
        "notice": notice,
    }
    asked = await client.post("/internal/enrolments", json=body)
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "pending"
    enrollment_id = asked.json()["id"]
    async with client.db.transaction() as session:
        stored = (await session.execute(select(enrolments).where(enrolments.c.id == uuid.UUID(enrollment_id)))).one()
    assert (stored.contact_email, stored.contact_name, stored.contact_language) == ("claire@example.fr", "Claire", "en")
    mine = await client.get(f"/internal/enrolments/{enrollment_id}", params={"account_id": account})
    assert mine.status_code == 200 and mine.json()["questions"] == "Q ?\nR."
    theirs = await client.get(f"/internal/enrolments/{enrollment_id}", params={"account_id": other})
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    full = await client.post("/internal/enrolments", json=body | {"account_id": other})
    assert (full.status_code, full.json()["code"]) == (409, "session_full")
    joined = await client.post(
        f"/internal/sessions/{session_id}/waiting-list",
        json={"account_id": other, "expected_participants": 2, "notice": notice | {"email": "paul@example.fr"}},
    )
    assert joined.status_code == 201 and joined.json()["status"] == "waiting"
    listed = await client.get(f"/internal/accounts/{account}/enrolments")
    assert [item["id"] for item in listed.json()["items"]] == [enrollment_id]
    assert (await client.get(f"/internal/accounts/{account}/enrolments", params={"when": "past"})).json()["total"] == 0
    cancelled = await client.post(f"/internal/enrolments/{enrollment_id}/cancellation", json={"account_id": account})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    organiser = (await client.get(f"/internal/sessions/{session_id}/enrolments")).json()
    (entry,) = organiser["waiting_list"]
    assert (entry["status"], entry["account_id"]) == ("offered", other)
    taken = await client.post(f"/internal/waiting-list/{entry['id']}/confirmation", json={"account_id": other})
    assert taken.status_code == 202 and taken.json()["status"] == "pending"
    gone = await client.delete(f"/internal/sessions/{session_id}/waiting-list", params={"account_id": other})
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "change",
    [
        {"expected_participants": 0},
        {"expected_participants": 1001},
        {"expected_participants": 2**70},
        {"questions": "x" * 2001},
        {"questions": "bad\x00"},
        {"session_id": "not-a-uuid"},
        {"notice": {"email": "not an address"}},
        {"notice": {"email": "a@example.fr", "language": "de"}},
    ],
)
async def test_bad_input_is_a_400_problem(client, change) -> None:  # type: ignore[no-untyped-def]
    body = {"account_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "expected_participants": 1}
    answer = await client.post("/internal/enrolments", json=body | change)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("invalid_request", "invalid_body")


async def test_an_unknown_session_is_refused_at_once(client) -> None:  # type: ignore[no-untyped-def]
    body = {"account_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "expected_participants": 1}
    answer = await client.post("/internal/enrolments", json=body)
    assert (answer.status_code, answer.json()["code"]) == (409, "session_unavailable"), answer.text


# --- participation links, sharing, joining, attendance (enrollment.links_api) -------------------------------------


async def confirmed(client, starts_in: timedelta = timedelta(days=10)) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """A confirmed enrolment (account, enrolment, session ids) in a new session starting in `starts_in`."""
    session_id = await new_session(client.db, capacity=5, starts_in=starts_in)
    account = uuid.uuid4()
    application = rules.Application(account_id=account, session_id=uuid.UUID(session_id), expected_participants=2)
    async with client.db.transaction() as session:
        row = await rules.request_enrolment(
            session, application, Rules(), datetime.now(UTC) - timedelta(days=1), Outbox("enrollment")
        )
        await rules.tokens_debited(session, [row.id], datetime.now(UTC))
    return str(account), str(row.id), session_id


async def outbox_types(client) -> list[str]:  # type: ignore[no-untyped-def]
    async with client.db.transaction() as session:
        return [json.loads(value)["type"] for value in (await session.execute(select(outbox.c.value))).scalars()]


async def test_an_account_reads_reissues_and_revokes_its_link(client) -> None:  # type: ignore[no-untyped-def]
    account, enrollment_id, _ = await confirmed(client)
    base = f"/internal/enrolments/{enrollment_id}/link"
    link = await client.get(base, params={"account_id": account})
    assert link.status_code == 200, link.text
    shown = link.json()
    assert set(shown) == {"link_id", "token", "path", "opens_at", "created_at", "mailed_at"}
    assert shown["path"] == f"/join/{shown['token']}" and shown["mailed_at"] is None
    theirs = await client.get(base, params={"account_id": str(uuid.uuid4())})
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    reissued = await client.post(f"{base}/reissue", json={"account_id": account, "requested_by": str(uuid.uuid4())})
    assert reissued.status_code == 200 and reissued.json()["token"] != shown["token"]
    assert (await client.post("/internal/join/resolve", json={"token": shown["token"]})).status_code == 404
    assert (await client.post("/internal/join/resolve", json={"token": reissued.json()["token"]})).status_code == 200
    assert (await client.post(f"{base}/revoke", json={"account_id": account})).status_code == 204
    gone = await client.get(base, params={"account_id": account})
    assert (gone.status_code, gone.json()["code"]) == (404, "link_not_found")
    listed = (await client.get(f"/internal/accounts/{account}/enrolments")).json()["items"]
    assert [(item["link"], item["attendance"]) for item in listed] == [(None, {"joins": 0, "people": 0})]
    shares = await client.post(
        f"{base}/shares", json={"account_id": account, "recipients": [{"channel": "sms", "address": "+33612345678"}]}
    )
    assert (shares.status_code, shares.json()["code"]) == (409, "link_not_found")
    other_account = str(uuid.uuid4())
    body = {"account_id": other_account, "session_id": listed[0]["session_id"], "expected_participants": 1}
    pending_id = (await client.post("/internal/enrolments", json=body)).json()["id"]
    pending = await client.post(f"/internal/enrolments/{pending_id}/link/reissue", json={"account_id": other_account})
    assert (pending.status_code, pending.json()["code"]) == (409, "not_confirmed")


async def test_every_token_that_opens_nothing_gets_the_same_answer(client) -> None:  # type: ignore[no-untyped-def]
    account, enrollment_id, _ = await confirmed(client)
    base = f"/internal/enrolments/{enrollment_id}/link"
    revoked = (await client.get(base, params={"account_id": account})).json()["token"]
    await client.post(f"{base}/reissue", json={"account_id": account})
    _, other_id, other_session = await confirmed(client)
    async with client.db.transaction() as session:  # a session over for 31 days: its link expired
        await session.execute(
            update(sessions)
            .where(sessions.c.id == uuid.UUID(other_session))
            .values(ends_at=datetime.now(UTC) - timedelta(days=31))
        )
        link_id = (
            await session.execute(
                select(participation_links.c.id).where(participation_links.c.enrollment_id == uuid.UUID(other_id))
            )
        ).scalar_one()
    expired = links.link_token(links.link_rules().key, link_id)
    tokens = [revoked, expired, links.link_token(b"k", uuid.uuid4()), "A" * 43, "abc", "x" * 100_000, "\x00", ""]
    for route, extra in (("/internal/join/resolve", {}), ("/internal/join/attendances", {"name": "Anne"})):
        answers = [await client.post(route, json={"token": token} | extra) for token in tokens]
        assert {answer.status_code for answer in answers} == {404}
        assert len({answer.content for answer in answers}) == 1
        assert answers[0].json()["code"] == "link_not_found"


async def test_people_join_through_the_link_and_their_attendance_is_shown(client) -> None:  # type: ignore[no-untyped-def]
    account, enrollment_id, session_id = await confirmed(client, starts_in=timedelta(minutes=5))
    token = (await client.get(f"/internal/enrolments/{enrollment_id}/link", params={"account_id": account})).json()[
        "token"
    ]
    resolved = await client.post("/internal/join/resolve", json={"token": token})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["state"], resolved.json()["account_id"]) == ("open", account)
    assert set(resolved.json()["session"]) == {
        "id",
        "title",
        "theme_title",
        "starts_at",
        "ends_at",
        "timezone",
        "access",
        "status",
    }
    joined = await client.post("/internal/join/attendances", json={"token": token, "name": "Anne", "email": "a@b.fr"})
    assert joined.status_code == 201, joined.text
    assert joined.json()["enrollment_id"] == enrollment_id and joined.json()["session_id"] == session_id
    await client.post("/internal/join/attendances", json={"token": token, "name": " anne "})
    assert (await outbox_types(client)).count("AttendanceRecorded") == 2
    mine = await client.get(f"/internal/enrolments/{enrollment_id}/attendance", params={"account_id": account})
    assert mine.status_code == 200 and (mine.json()["summary"]["joins"], mine.json()["summary"]["people"]) == (2, 1)
    theirs = await client.get(
        f"/internal/enrolments/{enrollment_id}/attendance", params={"account_id": str(uuid.uuid4())}
    )
    assert theirs.status_code == 404
    everyone = (await client.get(f"/internal/sessions/{session_id}/attendance")).json()
    assert everyone["summary"] == {
        "enrolments_confirmed": 1,
        "enrolments_attended": 1,
        "attendance_rate": 1.0,
        "people": 1,
    }
    (item,) = (await client.get(f"/internal/accounts/{account}/enrolments")).json()["items"]
    assert item["link"]["path"] == f"/join/{token}" and item["attendance"] == {"joins": 2, "people": 1}
    left = {"attendance_id": joined.json()["attendance_id"], "left_at": datetime.now(UTC).isoformat()}
    assert (await client.post(f"/internal/rooms/{session_id}/left", json=left)).status_code == 204
    assert (await client.post(f"/internal/rooms/{session_id}/ended")).status_code == 204
    items = (
        await client.get(f"/internal/enrolments/{enrollment_id}/attendance", params={"account_id": account})
    ).json()
    assert all(item["left_at"] for item in items["items"])
    # a session in ten days: the room is not open yet
    account, enrollment_id, _ = await confirmed(client)
    later = (await client.get(f"/internal/enrolments/{enrollment_id}/link", params={"account_id": account})).json()
    waiting = await client.post("/internal/join/attendances", json={"token": later["token"], "name": "Paul"})
    assert (waiting.status_code, waiting.json()["code"], waiting.json()["state"]) == (409, "room_not_open", "waiting")


async def test_an_account_shares_its_link_now_or_later_and_cancels(client) -> None:  # type: ignore[no-untyped-def]
    account, enrollment_id, _ = await confirmed(client)
    base = f"/internal/enrolments/{enrollment_id}/link/shares"
    body = {
        "account_id": account,
        "sender_name": "Claire",
        "language": "en",
        "message": "Hello,\nhere it is.",
        "recipients": [
            {"channel": "email", "address": "paul@example.fr", "name": "Paul"},
            {"channel": "sms", "address": "+33 6 12 34 56 78"},
        ],
    }
    now = await client.post(base, json=body)
    assert now.status_code == 201, now.text
    assert [(s["status"], s["recipient"]) for s in now.json()["items"]] == [
        ("sent", "paul@example.fr"),
        ("sent", "+33612345678"),
    ]
    later = await client.post(base, json=body | {"send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()})
    assert {s["status"] for s in later.json()["items"]} == {"scheduled"}
    listed = (await client.get(base, params={"account_id": account})).json()["items"]
    assert [s["status"] for s in listed] == ["scheduled", "scheduled", "sent", "sent"]
    assert (await outbox_types(client)).count("ParticipationLinkShared") == 2
    cancelled = await client.delete(f"{base}/{later.json()['items'][0]['id']}", params={"account_id": account})
    assert cancelled.status_code == 204
    sent = await client.delete(f"{base}/{now.json()['items'][0]['id']}", params={"account_id": account})
    assert (sent.status_code, sent.json()["code"]) == (409, "share_already_sent")
    unknown = await client.delete(f"{base}/{uuid.uuid4()}", params={"account_id": account})
    assert unknown.status_code == 404
    theirs = await client.get(base, params={"account_id": str(uuid.uuid4())})
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    too_late = await client.post(base, json=body | {"send_at": (datetime.now(UTC) + timedelta(days=11)).isoformat()})
    assert (too_late.status_code, too_late.json()["field"]) == (400, "send_at")


RECIPIENT = {"channel": "email", "address": "paul@example.fr"}


@pytest.mark.parametrize(
    ("route", "change"),
    [
        ("shares", {"recipients": []}),
        ("shares", {"recipients": [RECIPIENT] * 21}),
        ("shares", {"recipients": [{"channel": "email", "address": "not an address"}]}),
        ("shares", {"recipients": [{"channel": "email", "address": "a@b.fr\x00"}]}),
        ("shares", {"recipients": [{"channel": "sms", "address": "0612345678"}]}),
        ("shares", {"recipients": [{"channel": "sms", "address": "+331234"}]}),
        ("shares", {"recipients": [{"channel": "pigeon", "address": "paul@example.fr"}]}),
        ("shares", {"recipients": [RECIPIENT | {"name": "x" * 201}]}),
        ("shares", {"message": "x" * 1001}),
        ("shares", {"message": "bad\x00"}),
        ("shares", {"language": "de"}),
        ("shares", {"send_at": "2030-01-01T10:00:00"}),
        ("shares", {"send_at": "tomorrow"}),
        ("shares", {"send_at": "9999-12-31T23:59:59-23:59"}),
        ("shares", {"send_at": 2**70}),
        ("shares", {"account_id": "not-a-uuid"}),
        ("shares", {"sender_name": "x" * 201}),
        ("attendances", {"name": ""}),
        ("attendances", {"name": "   "}),
        ("attendances", {"name": "Anne\x00"}),
        ("attendances", {"name": "Anne\u200b"}),
        ("attendances", {"name": "x" * 201}),
        ("attendances", {"email": "not an address"}),
        ("attendances", {"token": 2**70}),
        ("left", {"left_at": "not a date"}),
        ("left", {"left_at": 2**70}),
        ("left", {"left_at": "0001-01-01T00:00:00+01:00"}),
        ("left", {"attendance_id": "x"}),
        ("reissue", {"account_id": 2**70}),
        ("reissue", {"requested_by": "\x00"}),
    ],
)
async def test_bad_input_to_the_link_routes_is_a_400_problem(client, route, change) -> None:  # type: ignore[no-untyped-def]
    enrollment_id = uuid.uuid4()
    url, body = {
        "shares": (f"/internal/enrolments/{enrollment_id}/link/shares", {"recipients": [RECIPIENT]}),
        "attendances": ("/internal/join/attendances", {"token": "A" * 43, "name": "Anne"}),
        "left": (
            f"/internal/rooms/{uuid.uuid4()}/left",
            {"attendance_id": str(uuid.uuid4()), "left_at": "2030-01-01T10:00:00Z"},
        ),
        "reissue": (f"/internal/enrolments/{enrollment_id}/link/reissue", {}),
    }[route]
    answer = await client.post(url, json={"account_id": str(uuid.uuid4())} | body | change)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("invalid_request", "invalid_body")


@pytest.mark.parametrize("query", [{"account_id": "x"}, {"account_id": "\x00"}, {}, {"account_id": "9" * 400}])
async def test_bad_queries_to_the_link_routes_are_400_problems(client, query) -> None:  # type: ignore[no-untyped-def]
    for path in ("link", "link/shares", "attendance"):
        answer = await client.get(f"/internal/enrolments/{uuid.uuid4()}/{path}", params=query)
        assert answer.status_code == 400, answer.text
