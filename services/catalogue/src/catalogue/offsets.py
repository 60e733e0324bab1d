"""The scheduler's plan: the moments catalogue announces about a session, and until when each still matters.

Offsets, in exact time (7 days is 168 hours, whatever the clocks do in between):
- J-7: 7 days before the start, a reminder;
- J-2: 2 days before the start, the participation links go out;
- H-1: 1 hour before the start, a reminder;
- open: 15 minutes before the start, the room opens;
- end: at the end (the start + the duration), the session has ended.

The catch-up rule: after downtime, or for a session created late, an offset is still sent while it matters:
- J-7 until J-2's due time (a week's reminder arriving with the links is stale);
- J-2 until the start (the links must reach people, even late);
- H-1 until the start;
- open until the end;
- end always.
A scheduler sends an offset once it is due, if it still matters, and never one that stopped mattering.

`plan` is what to schedule for a session created (or published) at `created_at`: every offset due later, and the
already-due ones that still matter, kept at their own (past) due time so they go at once, except reminders
(J-7, H-1): a reminder whose due time passed before the session existed is dropped.
All times are aware datetimes (due times come back in UTC); nothing here reads a clock or a database.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal, NamedTuple

Offset = Literal["J-7", "J-2", "H-1", "open", "end"]

# In due-time order. Each is relative to the start, except end: relative to the end.
OFFSETS: Mapping[Offset, timedelta] = MappingProxyType(
    {
        "J-7": timedelta(days=-7),
        "J-2": timedelta(days=-2),
        "H-1": timedelta(hours=-1),
        "open": timedelta(minutes=-15),
        "end": timedelta(0),
    }
)
REMINDERS: frozenset[Offset] = frozenset({"J-7", "H-1"})


class Planned(NamedTuple):
    offset: Offset
    due_at: datetime


def due_at(offset: Offset, starts_at: datetime, ends_at: datetime) -> datetime:
    """When the offset is due, in UTC."""
    if offset not in OFFSETS:
        raise ValueError(f"unknown offset {offset!r}")
    _check(starts_at, ends_at)
    anchor = ends_at if offset == "end" else starts_at
    # In UTC: the same arithmetic on a Paris datetime would count wall-clock days, 167 or 169 hours across a change.
    return anchor.astimezone(UTC) + OFFSETS[offset]


def still_matters(offset: Offset, starts_at: datetime, ends_at: datetime, now: datetime) -> bool:
    """Whether an offset is still worth sending at `now` (the catch-up rule of the module docstring)."""
    _check(starts_at, ends_at, now)
    until = _matters_until(offset, starts_at, ends_at)
    return until is None or now < until


def plan(starts_at: datetime, ends_at: datetime, created_at: datetime) -> list[Planned]:
    """The offsets to schedule for a session created at `created_at`, in due-time order."""
    _check(starts_at, ends_at, created_at)
    planned = []
    for offset in OFFSETS:
        due = due_at(offset, starts_at, ends_at)
        if due >= created_at or (offset not in REMINDERS and still_matters(offset, starts_at, ends_at, created_at)):
            planned.append(Planned(offset, due))
    return planned


def _matters_until(offset: Offset, starts_at: datetime, ends_at: datetime) -> datetime | None:
    """When an offset stops mattering; None for never."""
    if offset == "J-7":
        return due_at("J-2", starts_at, ends_at)
    if offset in ("J-2", "H-1"):
        return starts_at
    if offset == "open":
        return ends_at
    if offset == "end":
        return None
    raise ValueError(f"unknown offset {offset!r}")


def _check(starts_at: datetime, ends_at: datetime, *others: datetime) -> None:
    if any(moment.tzinfo is None for moment in (starts_at, ends_at, *others)):
        raise ValueError("offsets work on aware datetimes")
    if ends_at <= starts_at:
        raise ValueError(f"a session ends after it starts, not at {ends_at.isoformat()}")
