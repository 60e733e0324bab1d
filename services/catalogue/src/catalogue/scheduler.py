"""The scheduler: SessionStarting at each offset of a published session, SessionEnded at its end, exactly once.

Every replica runs the loop; none holds a lock for the others. Exactly-once rests on the schedule rows: a pass
claims due rows with `FOR UPDATE ... SKIP LOCKED` and, in the same transaction, writes the events to the outbox
and marks the rows emitted (or skipped). A second replica skips the rows the first holds and, once it commits,
no longer sees them as pending; a crash or an error rolls the events and the marks back together, and the next
pass does the work again. No advisory lock (unlike billing's expiry job): rows are independent, so replicas
share a backlog instead of waiting for one another.

The claim also locks each row's session (`FOR UPDATE OF schedule, sessions`): the offsets of one session are
handled by one replica at a time, oldest first, so its events keep their order even when two replicas share a
backlog; and never while a transaction that reschedules or cancels it is in flight (its update of the session
row holds the row, so the pass skips it and finds the new plan next time): an event never carries the times a
reschedule just replaced. A session whose row is busy (an enrolment being counted) waits for the next pass.

After downtime a pass catches up: every due offset is reached at once, sent if it still matters at `now` and
marked skipped if not (`offsets.still_matters`: e.g. an H-1 reminder after the start), and never sent later.

What the session service calls, inside its own transaction:
- `plan_session` when a session is published: the rows of `offsets.plan` (late offsets that still matter are
  due at once, e.g. the J-2 links of a session created the day before);
- `replan_session` when it is rescheduled: every offset is planned again for the new times, as `plan` does at
  the reschedule time. An offset already emitted stays emitted if its new due time has passed too (never sent
  twice: the J-2 links of a session moved one day earlier), and is pending again if its new due time is ahead
  (a session moved a week later gets its J-2 links again, with the new time); any other planned offset takes
  its new due time and is pending. A pending offset that `plan` leaves out (a reminder already overdue at the
  new time) goes; emitted and skipped rows stay as history;
- `unplan_session` when it is cancelled: the pending rows go; what was emitted or skipped stays as history.
`replan_session` and `unplan_session` wait for the locks of the session's schedule rows, so a pass emitting one
of them finishes first and they see it emitted.

`run_forever` runs the passes in every replica: after a pass it sleeps until the next due time, at most
`every_seconds` (a session planned meanwhile waits at most that long), so an offset usually goes within
milliseconds of its due time. Metrics: `catalogue_scheduler_lag_seconds` (emission minus due time, by offset),
`catalogue_scheduler_skipped_total`, and the due pending rows (count, oldest age) read from the database after
each pass: every replica reports the same figures (take `max` across replicas, not `sum`).
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Row, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalogue import offsets
from catalogue.models import schedule, sessions
from contracts.events.catalogue import SessionEnded, SessionStarting
from servicekit.db import Database
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)

BATCH_SIZE = 500

LAG = Histogram(
    "catalogue_scheduler_lag_seconds",
    "Time from an offset's due time to its event being written, by offset",
    ["offset"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 6 * 3600, 24 * 3600),
)
SKIPPED = Counter(
    "catalogue_scheduler_skipped_total", "Offsets reached after they stopped mattering, by offset", ["offset"]
)
DUE_PENDING = Gauge("catalogue_scheduler_due_pending", "Schedule rows due and not yet emitted or skipped")
OLDEST_DUE_AGE = Gauge(
    "catalogue_scheduler_oldest_due_pending_age_seconds", "How long the oldest due pending row has been due"
)

_PENDING = (schedule.c.emitted_at.is_(None), schedule.c.skipped_at.is_(None))


def utc_now() -> datetime:
    return datetime.now(UTC)


async def plan_session(
    session: AsyncSession, session_id: uuid.UUID, starts_at: datetime, ends_at: datetime, now: datetime
) -> None:
    """Schedule the offsets of a session published at `now`."""
    rows = [
        {"session_id": session_id, "offset": offset, "due_at": due}
        for offset, due in offsets.plan(starts_at, ends_at, now)
    ]
    await session.execute(insert(schedule), rows)


async def replan_session(
    session: AsyncSession, session_id: uuid.UUID, starts_at: datetime, ends_at: datetime, now: datetime
) -> None:
    """Plan a session rescheduled at `now` again for its new times (the rule is in the module docstring)."""
    planned = dict(offsets.plan(starts_at, ends_at, now))
    current = {
        row.offset: row
        for row in await session.execute(select(schedule).where(schedule.c.session_id == session_id).with_for_update())
    }
    this_session = schedule.c.session_id == session_id
    for offset in offsets.OFFSETS:
        row, due = current.get(offset), planned.get(offset)
        if due is None:
            if row is not None and row.emitted_at is None and row.skipped_at is None:
                await session.execute(delete(schedule).where(this_session, schedule.c.offset == offset))
        elif row is None:
            await session.execute(insert(schedule).values(session_id=session_id, offset=offset, due_at=due))
        elif row.emitted_at is not None and due <= now:
            continue  # sent already, and due again already: sending it again would be twice
        else:
            await session.execute(
                update(schedule)
                .where(this_session, schedule.c.offset == offset)
                .values(due_at=due, emitted_at=None, skipped_at=None)
            )


async def unplan_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    """Drop the pending offsets of a cancelled session."""
    await session.execute(delete(schedule).where(schedule.c.session_id == session_id, *_PENDING))


async def emit_due(session: AsyncSession, outbox: Outbox, now: datetime, limit: int = BATCH_SIZE) -> int:
    """One pass over up to `limit` due rows, oldest first; how many it emitted or skipped."""
    claimed = (
        await session.execute(
            select(
                schedule.c.session_id, schedule.c.offset, schedule.c.due_at, sessions.c.starts_at, sessions.c.ends_at
            )
            .join(sessions, sessions.c.id == schedule.c.session_id)
            .where(*_PENDING, schedule.c.due_at <= now, sessions.c.status == "published")
            .order_by(schedule.c.due_at, schedule.c.session_id)
            .limit(limit)
            .with_for_update(of=[schedule, sessions], skip_locked=True)
        )
    ).all()
    emitted, skipped = [], []
    for row in claimed:
        if offsets.still_matters(row.offset, row.starts_at, row.ends_at, now):
            emitted.append(row)
            LAG.labels(row.offset).observe((now - row.due_at).total_seconds())
        else:
            skipped.append(row)
            SKIPPED.labels(row.offset).inc()
    await outbox.add_all(session, [_announcement(row) for row in emitted])
    await _mark(session, emitted, emitted_at=now)
    await _mark(session, skipped, skipped_at=now)
    finished = [row.session_id for row in emitted if row.offset == "end"]
    if finished:
        await session.execute(
            update(sessions)
            .where(sessions.c.id.in_(finished), sessions.c.status == "published")
            .values(status="finished", updated_at=now)
        )
    return len(claimed)


async def run_forever(
    db: Database, outbox: Outbox, every_seconds: float, clock: Callable[[], datetime] = utc_now
) -> None:
    """Emit what is due, in passes of its own transactions (at once again while a pass was full), then sleep until
    the next due time, at most `every_seconds`; an error is logged and the next pass tries again."""
    while True:
        pause = every_seconds
        try:
            while (count := await _pass(db, outbox, clock())) == BATCH_SIZE:
                log.info("scheduler: %d offsets emitted or skipped, more are due", count)
            if count:
                log.info("scheduler: %d offsets emitted or skipped", count)
            async with db.transaction() as session:
                now = clock()
                await measure(session, now)
                following = await next_due(session, now)
            if following is not None:
                pause = min(every_seconds, (following - now).total_seconds())
        except Exception:
            log.exception("scheduler pass failed; next pass in %.1fs", every_seconds)
        await asyncio.sleep(pause)


async def measure(session: AsyncSession, now: datetime) -> None:
    """Refresh the gauges of due pending rows: how many, and how long the oldest has been due."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(schedule.c.due_at)).where(*_PENDING, schedule.c.due_at <= now)
        )
    ).one()
    DUE_PENDING.set(count)
    OLDEST_DUE_AGE.set((now - oldest).total_seconds() if oldest else 0)


async def next_due(session: AsyncSession, now: datetime) -> datetime | None:
    """The earliest pending due time still ahead of `now`, if any."""
    return await session.scalar(select(func.min(schedule.c.due_at)).where(*_PENDING, schedule.c.due_at > now))


async def _pass(db: Database, outbox: Outbox, now: datetime) -> int:
    async with db.transaction() as session:
        return await emit_due(session, outbox, now, limit=BATCH_SIZE)


def _announcement(row: Row[Any]) -> SessionStarting | SessionEnded:
    if row.offset == "end":
        return SessionEnded(session_id=row.session_id, ended_at=row.ends_at)
    return SessionStarting(session_id=row.session_id, offset=row.offset, starts_at=row.starts_at, ends_at=row.ends_at)


async def _mark(session: AsyncSession, rows: Sequence[Row[Any]], **moment: datetime) -> None:
    if rows:
        keys = [(row.session_id, row.offset) for row in rows]
        await session.execute(
            update(schedule).where(tuple_(schedule.c.session_id, schedule.c.offset).in_(keys)).values(**moment)
        )
