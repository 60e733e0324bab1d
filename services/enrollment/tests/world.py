"""The enrollment tests' world on a real PostgreSQL: sessions known from catalogue's events, enrolments, outbox."""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar.di import Provide
from sqlalchemy import select

from contracts import Envelope, Event, decode, encode
from contracts.events.catalogue import SessionScheduled
from enrollment import handlers, service
from enrollment.api import EXCEPTION_HANDLERS
from enrollment.models import enrolments, waiting_list
from enrollment.service import Application, Rules
from servicekit.db import Database, outbox
from servicekit.outbox import Outbox
from servicekit.runtime import Service, build_http_app

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
STARTS_AT = NOW + timedelta(days=10)
RULES = Rules()
OUTBOX = Outbox("enrollment")


def envelope(event: Event) -> Envelope:
    record = encode(event, source="test")
    return decode(record.topic, record.key, record.value, record.headers)


async def on_session_event(db: Database, event: Event) -> None:
    async with db.transaction() as session:
        await handlers.session_handler(OUTBOX, RULES)(session, envelope(event))


async def on_wallet_event(db: Database, event: Event) -> None:
    async with db.transaction() as session:
        await handlers.lock_sessions_of_answers(session, [envelope(event)])
        await handlers.wallet_handler(OUTBOX, RULES)(session, envelope(event))


def scheduled(session_id: uuid.UUID | None = None, **fields: Any) -> SessionScheduled:
    values = {
        "session_id": session_id or uuid.uuid4(),
        "theme_id": uuid.uuid4(),
        "title": "Prise en main de Pronote",
        "starts_at": STARTS_AT,
        "duration_minutes": 60,
        "capacity": 20,
        "price_tokens": 1,
        "premium_price_tokens": 5,
        "provider": "bbb",
    }
    return SessionScheduled(**(values | fields))


async def new_session(db: Database, **fields: Any) -> uuid.UUID:
    event = scheduled(**fields)
    await on_session_event(db, event)
    return event.session_id


def application(session_id: uuid.UUID, **fields: Any) -> Application:
    values = {"account_id": uuid.uuid4(), "session_id": session_id, "expected_participants": 3}
    return Application(**(values | fields))


async def enrol(
    db: Database, session_id: uuid.UUID, now: datetime = NOW, as_the_api: bool = False, **fields: Any
) -> Any:
    """A request, in a transaction (as a purchase order's) or, `as_the_api`, in none (Database.autocommit)."""
    async with db.autocommit() if as_the_api else db.transaction() as session:
        return await service.request_enrolment(session, application(session_id, **fields), RULES, now, OUTBOX)


async def wait(db: Database, session_id: uuid.UUID, now: datetime = NOW, **fields: Any) -> Any:
    async with db.transaction() as session:
        entry, events = await service.join_waiting_list(session, application(session_id, **fields), RULES, now)
        await OUTBOX.add_all(session, events)
    return entry


async def published(db: Database) -> list[dict[str, Any]]:
    """The outbox's events, in order."""
    async with db.transaction() as session:
        rows = (await session.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars().all()
    return [json.loads(value) for value in rows]


async def enrolment(db: Database, enrollment_id: uuid.UUID) -> Any:
    async with db.transaction() as session:
        return (await session.execute(select(enrolments).where(enrolments.c.id == enrollment_id))).one()


async def entry(db: Database, entry_id: uuid.UUID) -> Any:
    async with db.transaction() as session:
        return (await session.execute(select(waiting_list).where(waiting_list.c.id == entry_id))).one()


@asynccontextmanager
async def api_client(db: Database, controllers: list[Any], settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The internal routes on `db` (no Kafka: the outbox only), on the test's own event loop (the database's pool
    belongs to it), unlike Litestar's test client."""
    fake = Service.__new__(Service)  # what the routes use of a Service
    fake.db, fake.outbox, fake.settings = db, OUTBOX, settings
    app = build_http_app(
        "enrollment",
        controllers,
        checks={},
        dependencies={"service": Provide(lambda: fake, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://enrollment") as client:
        yield client
