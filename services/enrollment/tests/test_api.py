"""The internal API on a real PostgreSQL (no Kafka: the outbox only): 202 with id and status, another account's
enrolment as 404, refusals as 409 problems with their code, bad input as 400."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar.di import Provide
from sqlalchemy import select

from contracts.events.catalogue import SessionScheduled
from enrollment import service as rules
from enrollment.api import CONTROLLERS, EXCEPTION_HANDLERS
from enrollment.models import enrolments
from enrollment.service import Rules
from enrollment.settings import EnrollmentSettings
from servicekit.db import Database
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
        CONTROLLERS,
        checks={},
        dependencies={"service": Provide(lambda: fake, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # on the test's own event loop (the database's pool belongs to it), unlike Litestar's test client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://enrollment") as test_client:
        test_client.db = db  # type: ignore[attr-defined]
        yield test_client
    await db.dispose()


async def new_session(db: Database, capacity: int = 1) -> str:
    event = SessionScheduled(
        session_id=uuid.uuid4(),
        theme_id=uuid.uuid4(),
        title="Pronote",
        starts_at=datetime.now(UTC) + timedelta(days=10),
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
