"""Recurring sessions: a rule, a small subset of RFC 5545's RRULE, expanded into the UTC instants of their starts.

A series is expanded in LOCAL wall time, then each start is converted to UTC (local_time): a weekly 14:00 in Paris
stays 14:00 for the people in Paris, and its UTC instant moves by an hour at each daylight-saving change. As RFC 5545
(3.3.5) reads a local time in a time zone:
- an occurrence that falls in a spring-forward gap is moved forward by the gap's length (02:30 on the last Sunday
  of March in Paris -> 03:30 summer time);
- an occurrence that happens twice (the autumn fall-back hour) is the first one (summer time, the earlier instant).
The first start itself must exist (local_time.NonexistentLocalTime otherwise): the organiser typed it, so they are
told rather than silently moved.

What a `Recurrence` can say, and nothing else (`SeriesError`, with a stable `code`, otherwise):
- daily, every `interval` days;
- weekly, every `interval` weeks on `weekdays` (weeks start on Monday, RFC 5545's default);
- monthly, every `interval` months on the first start's day of the month (a month without that day, such as
  February for the 31st, has no session, as in RFC 5545), or with `monthly_position` on the n-th (1 to 4) or last
  (-1) `weekdays[0]` of the month;
- ending after `count` sessions (1 to 500) or on `until`, a local date, inclusive: exactly one of the two.
The first occurrence is the first start when it matches the rule, else the rule's first match after it (dateutil's
reading; RFC 5545 would count the first start anyway). A series never has more than 500 sessions.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import islice
from typing import Literal, get_args

from dateutil import rrule

from catalogue import local_time

Frequency = Literal["daily", "weekly", "monthly"]
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_OCCURRENCES = 500
MAX_INTERVAL = 99
MONTHLY_POSITIONS = (1, 2, 3, 4, -1)
MAX_RRULE_LENGTH = 200

_FREQUENCIES = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}
_DAYS = dict(zip(WEEKDAYS, (rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU), strict=True))
_BYDAY_ITEM = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_NUMBER = re.compile(r"[0-9]{1,4}")
_UNTIL = re.compile(r"([0-9]{8})(T235959)?")  # a date, or the last second of that day in floating local time


class SeriesError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Recurrence:
    frequency: Frequency
    interval: int = 1
    weekdays: tuple[str, ...] = ()  # in Monday-first order once built, whatever order they were given in
    monthly_position: int | None = None
    count: int | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.frequency not in get_args(Frequency):
            raise SeriesError("invalid_frequency", f"frequency is daily, weekly or monthly, not {self.frequency!r}")
        if not _whole(self.interval) or not 1 <= self.interval <= MAX_INTERVAL:
            raise SeriesError("invalid_interval", f"interval is a whole number from 1 to {MAX_INTERVAL}")
        self._check_days()
        self._check_end()
        object.__setattr__(self, "weekdays", tuple(sorted(self.weekdays, key=WEEKDAYS.index)))

    def _check_days(self) -> None:
        days = tuple(self.weekdays)
        if any(day not in WEEKDAYS for day in days) or len(set(days)) != len(days):
            raise SeriesError("invalid_weekdays", f"weekdays are distinct codes among {', '.join(WEEKDAYS)}")
        if self.monthly_position is not None:
            if self.frequency != "monthly":
                raise SeriesError("invalid_monthly_position", "only a monthly series has a monthly position")
            if not _whole(self.monthly_position) or self.monthly_position not in MONTHLY_POSITIONS:
                raise SeriesError("invalid_monthly_position", "monthly position is 1 to 4, or -1 for the last")
            if len(days) != 1:
                raise SeriesError("invalid_weekdays", "a monthly series on the n-th weekday names exactly one day")
        elif self.frequency == "weekly" and not days:
            raise SeriesError("invalid_weekdays", "a weekly series names at least one weekday")
        elif self.frequency != "weekly" and days:
            raise SeriesError("invalid_weekdays", f"a {self.frequency} series names no weekday")

    def _check_end(self) -> None:
        if (self.count is None) == (self.until is None):
            raise SeriesError("count_or_until", "a series ends after a number of sessions or on a date: one of the two")
        if self.count is not None and (not _whole(self.count) or not 1 <= self.count <= MAX_OCCURRENCES):
            raise SeriesError("invalid_count", f"a series has 1 to {MAX_OCCURRENCES} sessions")
        if self.until is not None and (not isinstance(self.until, date) or isinstance(self.until, datetime)):
            raise SeriesError("invalid_until", "until is a date (the last day of the series)")


def to_rrule(recurrence: Recurrence) -> str:
    """The RFC 5545 RRULE text, e.g. FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH;COUNT=10. UNTIL is the until day's last
    second in floating local time (20271231T235959), which keeps the day inclusive for a series starting at 14:00."""
    parts = [f"FREQ={recurrence.frequency.upper()}", f"INTERVAL={recurrence.interval}"]
    if recurrence.monthly_position is not None:
        parts.append(f"BYDAY={recurrence.monthly_position}{recurrence.weekdays[0]}")
    elif recurrence.weekdays:
        parts.append(f"BYDAY={','.join(recurrence.weekdays)}")
    if recurrence.count is not None:
        parts.append(f"COUNT={recurrence.count}")
    if recurrence.until is not None:
        parts.append(f"UNTIL={recurrence.until:%Y%m%d}T235959")
    return ";".join(parts)


def from_rrule(text: str) -> Recurrence:
    """The `Recurrence` an RRULE text says, if this module supports all of it (SeriesError otherwise)."""
    if not isinstance(text, str) or len(text) > MAX_RRULE_LENGTH:
        raise SeriesError("unsupported_rrule", "not a supported RRULE")
    text = text.strip().upper().removeprefix("RRULE:")
    fields: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if not equals or name not in ("FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL") or name in fields:
            raise SeriesError("unsupported_rrule", f"unsupported RRULE part {part[:40]!r}")
        fields[name] = value
    frequency = fields.get("FREQ", "").lower()
    if frequency not in get_args(Frequency):
        raise SeriesError("unsupported_rrule", "FREQ is DAILY, WEEKLY or MONTHLY")
    weekdays, position = _byday(fields["BYDAY"]) if "BYDAY" in fields else ((), None)
    return Recurrence(
        frequency=frequency,  # type: ignore[arg-type]  # checked just above
        interval=_number(fields.get("INTERVAL", "1"), "INTERVAL"),
        weekdays=weekdays,
        monthly_position=position,
        count=_number(fields["COUNT"], "COUNT") if "COUNT" in fields else None,
        until=_until(fields["UNTIL"]) if "UNTIL" in fields else None,
    )


def occurrences(
    recurrence: Recurrence, first_local_start: datetime, tz: str, limit: int = MAX_OCCURRENCES
) -> list[datetime]:
    """The UTC starts of the series' first `limit` sessions, in order (see the module docstring for the rules)."""
    if first_local_start.tzinfo is not None:
        raise ValueError(f"the first start is a naive local time, not the aware {first_local_start.isoformat()}")
    if limit < 1:
        raise ValueError(f"limit is at least 1, not {limit}")
    local_time.to_utc(first_local_start, tz)  # the typed start must exist: NonexistentLocalTime otherwise
    starts = list(islice(_rule(recurrence, first_local_start), MAX_OCCURRENCES + 1))
    if not starts:
        raise SeriesError("no_occurrence", "no session of the series falls between the first start and its end")
    if len(starts) > MAX_OCCURRENCES:
        raise SeriesError("too_many_occurrences", f"a series has at most {MAX_OCCURRENCES} sessions")
    return [local_time.to_utc(start, tz, shift_gap=True) for start in starts[:limit]]


def _rule(recurrence: Recurrence, first_local_start: datetime) -> rrule.rrule:
    if recurrence.monthly_position is not None:
        byweekday = _DAYS[recurrence.weekdays[0]](recurrence.monthly_position)
    else:
        byweekday = [_DAYS[day] for day in recurrence.weekdays] or None
    return rrule.rrule(
        _FREQUENCIES[recurrence.frequency],
        dtstart=first_local_start,
        interval=recurrence.interval,
        wkst=rrule.MO,
        byweekday=byweekday,
        count=recurrence.count,
        until=datetime.combine(recurrence.until, time.max) if recurrence.until else None,
        cache=False,
    )


def _byday(value: str) -> tuple[tuple[str, ...], int | None]:
    items = [_BYDAY_ITEM.fullmatch(item) for item in value.split(",")]
    if not all(items):
        raise SeriesError("unsupported_rrule", f"unsupported BYDAY {value[:40]!r}")
    matches = [item for item in items if item]
    positions = [int(match[1]) for match in matches if match[1]]
    if not positions:
        return tuple(match[2] for match in matches), None
    if len(matches) != 1:
        raise SeriesError("unsupported_rrule", "BYDAY names one day when it has a position, such as 2WE or -1FR")
    return (matches[0][2],), positions[0]


def _number(value: str, name: str) -> int:
    if not _NUMBER.fullmatch(value):
        raise SeriesError("unsupported_rrule", f"{name} is a whole number")
    return int(value)


def _until(value: str) -> date:
    match = _UNTIL.fullmatch(value)
    if not match:
        raise SeriesError("unsupported_rrule", "UNTIL is a local date, such as 20271231 or 20271231T235959")
    try:
        return datetime.strptime(match[1], "%Y%m%d").date()
    except ValueError:
        raise SeriesError("unsupported_rrule", f"UNTIL {match[1]} is not a date") from None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
