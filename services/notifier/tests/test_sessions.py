"""notifier.sessions on a real notifier database: the copy follows catalogue's events, and the invitations'
SEQUENCE goes up each time the session's time changes or it is cancelled, never for a change of title alone."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.events.catalogue import SessionCancelled, SessionRescheduled, SessionScheduled, SessionUpdated
from notifier import sessions
from servicekit.db import Database
from servicekit.migrations import upgrade

pytestmark = pytest.mark.infra

START = datetime(2027, 3, 20, 13, 0, tzinfo=UTC)
AT = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=2)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


def terms(session_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "theme_id": uuid.uuid4(),
        "title": "Prise en main de Pronote",
        "starts_at": START,
        "duration_minutes": 60,
        "capacity": 12,
        "provider": "jitsi",
    } | changes


async def copy_after(db: Database, *events: Any) -> Any:
    async with db.transaction() as session:
        for event in events:
            await sessions.apply(session, event, AT)
        return await sessions.session_of(session, events[0].session_id)


async def test_the_copy_follows_the_session_and_its_invitations_sequence(db: Database) -> None:
    session_id = uuid.uuid4()
    published = await copy_after(db, SessionScheduled(**terms(session_id)))
    assert (published.title, published.starts_at, published.status, published.invitation_sequence) == (
        "Prise en main de Pronote",
        START,
        "published",
        0,
    )
    renamed = await copy_after(db, SessionUpdated(**terms(session_id, title="Pronote, niveau 2", capacity=20)))
    assert (renamed.title, renamed.invitation_sequence) == ("Pronote, niveau 2", 0)  # same time: same invitation
    later = START + timedelta(days=7)
    moved = await copy_after(
        db,
        SessionRescheduled(
            session_id=session_id,
            previous_starts_at=START,
            starts_at=later,
            duration_minutes=90,
            timezone="Europe/Paris",
        ),
        SessionUpdated(**terms(session_id, title="Pronote, niveau 2", starts_at=later, duration_minutes=90)),
    )
    assert (moved.starts_at, moved.duration_minutes, moved.invitation_sequence) == (later, 90, 1)
    longer = await copy_after(db, SessionUpdated(**terms(session_id, starts_at=later, duration_minutes=120)))
    assert (longer.duration_minutes, longer.invitation_sequence) == (120, 2)
    cancelled = SessionCancelled(session_id=session_id, reason="Formateur malade", cancelled_at=AT)
    gone = await copy_after(db, cancelled, cancelled)  # redelivered: applied once by the inbox, harmless here too
    assert (gone.status, gone.invitation_sequence) == ("cancelled", 3)


async def test_a_session_never_published_here_is_not_invented(db: Database) -> None:
    unknown = uuid.uuid4()
    assert await copy_after(db, SessionCancelled(session_id=unknown, reason="x", cancelled_at=AT)) is None
