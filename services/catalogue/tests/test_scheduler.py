"""The scheduler on a real PostgreSQL (catalogue.scheduler): every offset of a published session announced exactly
once with two replicas, the catch-up after an outage, late sessions, reschedules, cancellations, the end.

The clock is the `now` each pass is given; replicas are two Database objects (two pools) on one database."""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Row, insert, select, text, update

from catalogue import scheduler
from catalogue.models import schedule, sessions, themes
from contracts import decode
from contracts.events.catalogue import SessionEnded, SessionStarting
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
OFFSETS = ["J-7", "J-2", "H-1", "open", "end"]
OUTBOX = Outbox("catalogue")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

Announcement = SessionStarting | SessionEnded


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database)
    await upgrade(database, "catalogue")
    yield database
    await database.dispose()


@pytest.fixture
async def other_replica(fresh_database, db):  # type: ignore[no-untyped-def]
    """A second scheduler replica: its own pool on the same database."""
    database = Database(fresh_database)
    yield database
    await database.dispose()


@pytest.fixture
async def theme_id(db: Database) -> uuid.UUID:
    theme_id = uuid.uuid4()
    async with db.transaction() as session:
        await session.execute(
            insert(themes).values(
                id=theme_id,
                title="Pronote",
                description="Vie scolaire",
                audience="Établissements",
                prerequisites="",
                tags=[],
                status="active",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    return theme_id


async def publish(
    db: Database, theme_id: uuid.UUID, starts: Sequence[datetime], *, minutes: int = 60, now: datetime = NOW
) -> list[uuid.UUID]:
    """Published sessions starting at `starts`, planned at `now` (what the session service does on publish)."""
    rows = [
        {
            "id": uuid.uuid4(),
            "theme_id": theme_id,
            "detached": False,
            "title": f"Session {i}",
            "description": "",
            "animator": "Claire",
            "starts_at": start,
            "ends_at": start + timedelta(minutes=minutes),
            "duration_minutes": minutes,
            "timezone": "Europe/Paris",
            "price_tokens": 1,
            "access": "open",
            "waiting_message": "",
            "agenda": "",
            "provider": "bbb",
            "status": "published",
            "enrolled_count": 0,
            "published_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for i, start in enumerate(starts)
    ]
    async with db.transaction() as session:
        await session.execute(insert(sessions), rows)
        for row in rows:
            await scheduler.plan_session(session, row["id"], row["starts_at"], row["ends_at"], now)
    return [row["id"] for row in rows]


async def reschedule(db: Database, session_id: uuid.UUID, starts_at: datetime, minutes: int, now: datetime) -> None:
    async with db.transaction() as session:
        ends_at = starts_at + timedelta(minutes=minutes)
        await session.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(starts_at=starts_at, ends_at=ends_at, duration_minutes=minutes, updated_at=now)
        )
        await scheduler.replan_session(session, session_id, starts_at, ends_at, now)


async def drain(db: Database, now: datetime, limit: int = scheduler.BATCH_SIZE) -> int:
    """What one replica does at `now`: passes until one is not full; how many rows it settled."""
    settled = 0
    while True:
        async with db.transaction() as session:
            count = await scheduler.emit_due(session, OUTBOX, now, limit)
        settled += count
        if count < limit:
            return settled


async def step_clock(replicas: Sequence[Database], start: datetime, stop: datetime, step: timedelta) -> None:
    """Every replica runs at once at each tick from `start` to `stop`."""
    now = start
    while now <= stop:
        await asyncio.gather(*(drain(replica, now) for replica in replicas))
        now += step


async def announcements(db: Database) -> list[Announcement]:
    """The outbox's events, in publication order."""
    async with db.transaction() as session:
        rows = await session.execute(
            select(outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers).order_by(outbox.c.id)
        )
        return [
            decode(row.topic, row.key, row.value, [(name, value.encode()) for name, value in row.headers]).event  # type: ignore[misc]
            for row in rows
        ]


def reached(events: Sequence[Announcement]) -> list[tuple[uuid.UUID, str]]:
    return [(event.session_id, event.offset if isinstance(event, SessionStarting) else "end") for event in events]


async def schedule_of(db: Database, session_id: uuid.UUID) -> dict[str, Row[Any]]:
    async with db.transaction() as session:
        rows = await session.execute(select(schedule).where(schedule.c.session_id == session_id))
        return {row.offset: row for row in rows}


async def status_of(db: Database, session_id: uuid.UUID) -> str:
    async with db.transaction() as session:
        return str(await session.scalar(select(sessions.c.status).where(sessions.c.id == session_id)))


async def test_two_replicas_announce_every_offset_of_200_sessions_exactly_once(
    db: Database, other_replica: Database, theme_id: uuid.UUID
) -> None:
    starts = [NOW + 8 * DAY + i * timedelta(minutes=13) for i in range(200)]
    ids = await publish(db, theme_id, starts[:100], minutes=60) + await publish(db, theme_id, starts[100:], minutes=90)
    step = timedelta(minutes=25)
    await step_clock([db, other_replica], NOW, starts[-1] + 2 * HOUR, step)

    events = reached(await announcements(db))
    assert Counter(events) == Counter((session_id, offset) for session_id in ids for offset in OFFSETS)
    for session_id in ids:  # in due order, per session
        assert [offset for announced, offset in events if announced == session_id] == OFFSETS
        rows = await schedule_of(db, session_id)
        assert all(
            row.skipped_at is None and timedelta(0) <= row.emitted_at - row.due_at < step for row in rows.values()
        )
        assert await status_of(db, session_id) == "finished"


async def test_replicas_claiming_at_the_same_moment_settle_each_row_once(
    db: Database, other_replica: Database, theme_id: uuid.UUID
) -> None:
    starts = [NOW + 8 * DAY + i * timedelta(seconds=1) for i in range(200)]
    ids = await publish(db, theme_id, starts)
    now = NOW + 8 * DAY - timedelta(minutes=1)  # J-7 stopped mattering; J-2, H-1 and open are due; end is not

    # Four loops (two per replica) in small batches, all at once: they contend for the same rows.
    settled = await asyncio.gather(*(drain(replica, now, limit=7) for replica in (db, other_replica) * 2))

    assert sum(settled) == 200 * 4
    events = reached(await announcements(db))
    assert Counter(events) == Counter((session_id, offset) for session_id in ids for offset in ("J-2", "H-1", "open"))
    for session_id in ids:
        assert [offset for announced, offset in events if announced == session_id] == ["J-2", "H-1", "open"]
        rows = await schedule_of(db, session_id)
        assert rows["J-7"].skipped_at == now and rows["J-7"].emitted_at is None
        assert rows["end"].emitted_at is None and rows["end"].skipped_at is None


async def test_one_replica_at_a_time_handles_a_session_so_its_events_keep_their_order(
    db: Database, other_replica: Database, theme_id: uuid.UUID
) -> None:
    starts_at = NOW + 3 * DAY
    (session_id,) = await publish(db, theme_id, [starts_at])
    await drain(db, starts_at - 2 * DAY)  # J-2
    back_at = starts_at - timedelta(minutes=10)  # H-1 and the room opening are both due

    async with db.transaction() as first:
        assert await scheduler.emit_due(first, OUTBOX, back_at, limit=1) == 1  # H-1, and the session is held
        assert await drain(other_replica, back_at) == 0  # so its room opening waits
    assert await drain(other_replica, back_at) == 1

    assert reached(await announcements(db)) == [(session_id, offset) for offset in ("J-2", "H-1", "open")]


async def test_after_a_six_hour_outage_what_still_matters_goes_once_and_the_stale_never(
    db: Database, other_replica: Database, theme_id: uuid.UUID
) -> None:
    down_at = NOW + 8 * DAY
    ended_during = await publish(db, theme_id, [down_at + 3 * HOUR])  # its H-1 and room opening are stale, its end not
    ending_after = await publish(db, theme_id, [down_at + 5.5 * HOUR])  # H-1 stale; the room is still open
    links_due = await publish(db, theme_id, [down_at + 2 * DAY + 3 * HOUR])  # J-2 goes late: until the start
    reminder_due = await publish(db, theme_id, [down_at + 7 * DAY + 2 * HOUR])  # J-7 goes late: until J-2's time
    replicas, step = [db, other_replica], timedelta(minutes=30)
    await step_clock(replicas, NOW, down_at, step)
    before = len(await announcements(db))

    back_at = down_at + 6 * HOUR
    await step_clock(replicas, back_at, back_at, step)

    caught_up = reached((await announcements(db))[before:])
    assert sorted(caught_up) == sorted(
        [(*ended_during, "end"), (*ending_after, "open"), (*links_due, "J-2"), (*reminder_due, "J-7")]
    )
    stale = [(*ended_during, "H-1"), (*ended_during, "open"), (*ending_after, "H-1")]
    for session_id, offset in stale:
        row = (await schedule_of(db, session_id))[offset]
        assert row.skipped_at == back_at and row.emitted_at is None

    await step_clock(replicas, back_at, down_at + 8 * DAY, step)
    events = Counter(reached(await announcements(db)))
    every = [
        (session_id, offset)
        for (session_id,) in (ended_during, ending_after, links_due, reminder_due)
        for offset in OFFSETS
    ]
    assert events == Counter(key for key in every if key not in stale)


async def test_a_session_created_the_day_before_gets_its_links_at_once(db: Database, theme_id: uuid.UUID) -> None:
    starts_at = NOW + DAY
    (session_id,) = await publish(db, theme_id, [starts_at], minutes=90, now=NOW)

    assert await drain(db, NOW) == 1
    (event,) = await announcements(db)
    assert event == SessionStarting(
        session_id=session_id, offset="J-2", starts_at=starts_at, ends_at=starts_at + timedelta(minutes=90)
    )

    await step_clock([db], NOW, starts_at + 2 * HOUR, timedelta(minutes=10))
    assert reached(await announcements(db)) == [(session_id, offset) for offset in ("J-2", "H-1", "open", "end")]
    assert "J-7" not in await schedule_of(db, session_id)


async def test_a_session_moved_a_week_later_gets_every_offset_again_at_the_new_times(
    db: Database, theme_id: uuid.UUID
) -> None:
    old_start = NOW + 10 * DAY
    (session_id,) = await publish(db, theme_id, [old_start])
    await step_clock([db], NOW, old_start - DAY, HOUR)  # J-7 and J-2 went out
    assert reached(await announcements(db)) == [(session_id, "J-7"), (session_id, "J-2")]

    new_start = old_start + 7 * DAY
    await reschedule(db, session_id, new_start, 90, now=old_start - DAY)
    rows = await schedule_of(db, session_id)
    assert {offset: (row.due_at, row.emitted_at) for offset, row in rows.items()} == {
        "J-7": (new_start - 7 * DAY, None),
        "J-2": (new_start - 2 * DAY, None),
        "H-1": (new_start - HOUR, None),
        "open": (new_start - timedelta(minutes=15), None),
        "end": (new_start + timedelta(minutes=90), None),
    }

    await step_clock([db], old_start - DAY, new_start + 2 * HOUR, timedelta(minutes=30))
    events = await announcements(db)
    assert reached(events[2:]) == [(session_id, offset) for offset in OFFSETS]
    assert all(event.starts_at == new_start for event in events[2:] if isinstance(event, SessionStarting))
    assert all(row.emitted_at >= row.due_at for row in (await schedule_of(db, session_id)).values())


async def test_a_session_moved_earlier_keeps_what_was_sent_and_drops_an_overdue_reminder(
    db: Database, theme_id: uuid.UUID
) -> None:
    old_start = NOW + 10 * DAY
    (session_id,) = await publish(db, theme_id, [old_start])
    moved_at = old_start - 2 * DAY + HOUR
    await step_clock([db], NOW, moved_at, HOUR)  # J-7 and J-2 went out

    new_start = moved_at + timedelta(minutes=30)  # J-2 is past again: not sent twice; H-1 is overdue: dropped
    await reschedule(db, session_id, new_start, 60, now=moved_at)
    rows = await schedule_of(db, session_id)
    assert sorted(rows) == ["J-2", "J-7", "end", "open"]
    assert rows["J-2"].emitted_at is not None and rows["J-2"].due_at == old_start - 2 * DAY
    assert rows["open"].due_at == new_start - timedelta(minutes=15) and rows["open"].emitted_at is None

    await step_clock([db], moved_at, new_start + 2 * HOUR, timedelta(minutes=5))
    events = await announcements(db)
    assert reached(events) == [(session_id, offset) for offset in ("J-7", "J-2", "open", "end")]
    assert events[2] == SessionStarting(
        session_id=session_id, offset="open", starts_at=new_start, ends_at=new_start + HOUR
    )


async def test_a_reschedule_waits_for_a_pass_emitting_the_session_and_sees_it_emitted(
    db: Database, other_replica: Database, theme_id: uuid.UUID
) -> None:
    starts_at = NOW + 10 * DAY
    (session_id,) = await publish(db, theme_id, [starts_at])
    due = starts_at - 2 * DAY
    async with db.transaction() as emitting:
        assert await scheduler.emit_due(emitting, OUTBOX, due) == 2  # J-7 skipped (stale by now), J-2 emitted
        moving = asyncio.create_task(reschedule(other_replica, session_id, starts_at - 20 * HOUR, 60, now=due))
        await until(lambda: waiting_for_a_lock(db), True)  # on the rows this pass holds
    await moving

    rows = await schedule_of(db, session_id)
    assert rows["J-2"].emitted_at == due  # its new time is past too: not sent again
    await step_clock([db], due, starts_at, timedelta(minutes=10))
    assert Counter(reached(await announcements(db)))[(session_id, "J-2")] == 1


async def test_a_cancellation_removes_the_pending_offsets_and_keeps_the_history(
    db: Database, theme_id: uuid.UUID
) -> None:
    starts_at = NOW + 10 * DAY
    (session_id,) = await publish(db, theme_id, [starts_at])
    await step_clock([db], NOW, starts_at - 6 * DAY, HOUR)  # J-7 went out
    cancelled_at = starts_at - 6 * DAY

    async with db.transaction() as session:
        await session.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(status="cancelled", cancelled_at=cancelled_at, cancel_reason="Animatrice malade")
        )
        await scheduler.unplan_session(session, session_id)

    assert list(await schedule_of(db, session_id)) == ["J-7"]
    await step_clock([db], cancelled_at, starts_at + 2 * HOUR, HOUR)
    assert reached(await announcements(db)) == [(session_id, "J-7")]


async def test_the_end_announces_session_ended_and_finishes_the_session(db: Database, theme_id: uuid.UUID) -> None:
    starts_at = NOW + 3 * HOUR
    (session_id,) = await publish(db, theme_id, [starts_at], minutes=90)
    ends_at = starts_at + timedelta(minutes=90)
    await drain(db, ends_at - timedelta(minutes=1))
    assert await status_of(db, session_id) == "published"

    await drain(db, ends_at + timedelta(seconds=5))

    assert (await announcements(db))[-1] == SessionEnded(session_id=session_id, ended_at=ends_at)
    assert await status_of(db, session_id) == "finished"
    assert (await schedule_of(db, session_id))["end"].emitted_at == ends_at + timedelta(seconds=5)


async def test_the_gauges_count_due_pending_rows_and_the_oldest_age(db: Database, theme_id: uuid.UUID) -> None:
    starts_at = NOW + DAY
    await publish(db, theme_id, [starts_at, starts_at + HOUR])
    async with db.transaction() as session:
        await scheduler.measure(session, NOW + 3 * HOUR)  # both J-2 rows are due (since NOW - 1 day), nothing else
        assert await scheduler.next_due(session, NOW + 3 * HOUR) == starts_at - HOUR

    assert REGISTRY.get_sample_value("catalogue_scheduler_due_pending") == 2
    assert REGISTRY.get_sample_value("catalogue_scheduler_oldest_due_pending_age_seconds") == 27 * 3600


async def test_run_forever_survives_an_error_and_catches_up(
    db: Database, theme_id: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    starts_at = NOW + DAY
    (session_id,) = await publish(db, theme_id, [starts_at])
    lag_before = REGISTRY.get_sample_value("catalogue_scheduler_lag_seconds_count", {"offset": "J-2"}) or 0
    ticks = iter([RuntimeError("clock unavailable")])

    def clock() -> datetime:
        failure = next(ticks, None)
        if failure is not None:
            raise failure
        return NOW + HOUR

    with caplog.at_level(logging.ERROR, logger="catalogue.scheduler"):
        loop = asyncio.create_task(scheduler.run_forever(db, OUTBOX, every_seconds=0.01, clock=clock))
        try:
            await until(lambda: announcements_of(db, session_id), [(session_id, "J-2")])
            await until(lambda: gauge("catalogue_scheduler_due_pending"), 0)
        finally:
            await stop(loop)

    assert "scheduler pass failed" in caplog.text
    assert REGISTRY.get_sample_value("catalogue_scheduler_lag_seconds_count", {"offset": "J-2"}) == lag_before + 1


async def test_run_forever_goes_on_at_once_while_a_pass_was_full(
    db: Database, theme_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "BATCH_SIZE", 3)
    ids = await publish(db, theme_id, [NOW + DAY + i * HOUR for i in range(7)])
    # Between passes it would sleep an hour: all seven J-2 events can only come from passes run back to back.
    loop = asyncio.create_task(scheduler.run_forever(db, OUTBOX, every_seconds=3600, clock=lambda: NOW))
    try:
        await until(lambda: count_events(db), 7)
    finally:
        await stop(loop)
    assert Counter(reached(await announcements(db))) == Counter((session_id, "J-2") for session_id in ids)


async def announcements_of(db: Database, session_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    return [key for key in reached(await announcements(db)) if key[0] == session_id]


async def count_events(db: Database) -> int:
    return len(await announcements(db))


async def waiting_for_a_lock(db: Database) -> bool:
    async with db.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting)


async def stop(loop: "asyncio.Task[None]") -> None:
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop


async def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def until(read: Any, expected: object, attempts: int = 500) -> None:
    """Poll a background loop's observable effect until it equals `expected` (not a duration check)."""
    for _ in range(attempts):
        if await read() == expected:
            return
        await asyncio.sleep(0.02)
    assert await read() == expected
