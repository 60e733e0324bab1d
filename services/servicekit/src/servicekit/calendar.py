"""Times of a calendar event in its own zone, and that zone's VTIMEZONE (iCalendar, RFC 5545), for every calendar
the system writes (the planning feed, the invitations mails carry).

- An event's DTSTART and DTEND are written in its zone (TZID) with the zone's VTIMEZONE. A wall time that happens
  twice (the autumn fall-back hour) means its first occurrence (RFC 5545, 3.3.5): when either instant is in the
  second one, both are written in UTC instead, so that no instant is ever moved (`zoned_times`).
- The VTIMEZONE is written as Outlook and Google write theirs: one DAYLIGHT and one STANDARD rule repeating yearly
  (RRULE), not a list of dates (RDATE), which Outlook is known to misread (its summer events come out an hour
  off). The rules are read from the zone's own changes (zoneinfo), from the first year they hold to 2038 at least;
  a zone without such rules at the events' dates gets one STANDARD part when its offset no longer changes, else
  its exact changes, one RDATE line each (vobject keeps only the first date of a list) (`vtimezone`).
"""

from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar

RULES_FROM, RULES_UNTIL = 1970, 2038  # the years scanned for a zone's changes, at least
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def zoned_times(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end in the zone (written with its TZID), or both in UTC when either wall time is the second
    occurrence of an hour that happens twice (a TZID wall time would mean the first one)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("an event's start and end are aware instants")
    local = (starts_at.astimezone(zone), ends_at.astimezone(zone))
    if any(wall.replace(fold=0).astimezone(UTC) != wall.astimezone(UTC) for wall in local):
        return starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    return local


# The VTIMEZONE ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One change of a zone's offset or name: at `at` (UTC) from `offset_from` to `offset_to`."""

    at: datetime
    offset_from: timedelta
    offset_to: timedelta
    name: str
    daylight: bool

    @property
    def onset(self) -> datetime:
        """When it happens on the clock it changes (RFC 5545 writes an onset in TZOFFSETFROM's time)."""
        return (self.at + self.offset_from).replace(tzinfo=None)

    @property
    def kind(self) -> tuple[timedelta, timedelta, str, bool]:
        return self.offset_from, self.offset_to, self.name, self.daylight


@dataclass(frozen=True)
class _Yearly:
    """A change that recurs each year: the `week`-th (-1: last) `weekday` of `month`, at the same wall time."""

    month: int
    week: int
    weekday: int
    onset_time: tuple[int, int, int]


def vtimezone(timezone: str, starts_at: datetime, ends_at: datetime) -> icalendar.Timezone:
    """The VTIMEZONE of `timezone` that is right for events from `starts_at` to `ends_at` (see the module docstring
    for its form)."""
    until = max(RULES_UNTIL, ends_at.astimezone(UTC).year + 2)
    changes = _zone_changes(timezone, until)
    ruled = _zone_rules(timezone, until)
    component = icalendar.Timezone()
    component.add("tzid", timezone)
    if ruled is not None and ruled[0] <= starts_at.astimezone(UTC).year:
        for change, rule in ruled[1]:
            part = _part(change, daylight=change.offset_to > change.offset_from)  # Dublin's is a negative DST
            part.add("rrule", {"freq": "yearly", "bymonth": rule.month, "byday": f"{rule.week}{DAYS[rule.weekday]}"})
            component.add_component(part)
    elif not changes or changes[-1].at <= starts_at:  # one offset from before the session on
        if changes:
            component.add_component(_part(changes[-1], daylight=False))
        else:
            since = datetime(RULES_FROM, 1, 1, tzinfo=UTC)
            local = since.astimezone(ZoneInfo(timezone))
            offset = local.utcoffset() or timedelta()
            component.add_component(
                _part(_Change(since - offset, offset, offset, local.tzname() or "", False), daylight=False)
            )
    else:
        by_kind: dict[tuple[timedelta, timedelta, str, bool], list[_Change]] = defaultdict(list)
        for change in changes:
            by_kind[change.kind].append(change)
        for same in by_kind.values():
            part = _part(same[0], daylight=same[0].daylight)
            for later in same[1:]:
                part.add("rdate", later.onset)  # one date per RDATE line
            component.add_component(part)
    return component


def _part(change: _Change, *, daylight: bool) -> icalendar.TimezoneStandard | icalendar.TimezoneDaylight:
    part = icalendar.TimezoneDaylight() if daylight else icalendar.TimezoneStandard()
    part.add("dtstart", change.onset)
    part.add("tzoffsetfrom", change.offset_from)
    part.add("tzoffsetto", change.offset_to)
    part.add("tzname", change.name)
    return part


@lru_cache(maxsize=32)
def _zone_changes(timezone: str, until: int) -> tuple[_Change, ...]:
    """The zone's changes from RULES_FROM to the start of `until`, found day by day, then to the second."""
    zone = ZoneInfo(timezone)

    def state(moment: datetime) -> tuple[timedelta | None, str | None, timedelta | None]:
        local = moment.astimezone(zone)
        return local.utcoffset(), local.tzname(), local.dst()

    found = []
    day = timedelta(days=1)
    moment, end = datetime(RULES_FROM, 1, 1, tzinfo=UTC), datetime(until, 1, 1, tzinfo=UTC)
    while moment < end:
        before = state(moment)
        if state(moment + day) != before:
            low, high = moment, moment + day  # the change is in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if state(middle) == before else (low, middle)
            after = high.astimezone(zone)
            found.append(
                _Change(
                    at=high,
                    offset_from=before[0] or timedelta(),
                    offset_to=after.utcoffset() or timedelta(),
                    name=after.tzname() or "",
                    daylight=(after.dst() or timedelta()) > timedelta(),
                )
            )
        moment += day
    return tuple(found)


@lru_cache(maxsize=32)
def _zone_rules(timezone: str, until: int) -> tuple[int, tuple[tuple[_Change, _Yearly], ...]] | None:
    """The first year from which the zone changes twice a year by the same two yearly rules up to `until`, and
    each rule with its change that year; None when its last years follow no such rules."""
    by_year: dict[int, list[_Change]] = defaultdict(list)
    for change in _zone_changes(timezone, until):
        by_year[change.onset.year].append(change)
    first: tuple[int, list[_Change], list[set[_Yearly]]] | None = None
    for year in range(until - 1, RULES_FROM - 1, -1):
        this_year = sorted(by_year.get(year, []), key=lambda change: change.at)
        if len(this_year) != 2 or not _there_and_back(*this_year):
            break
        fitting = [_rules_of(change) for change in this_year]
        if first is not None:
            if [change.kind for change in this_year] != [change.kind for change in first[1]]:
                break
            fitting = [mine & theirs for mine, theirs in zip(fitting, first[2], strict=True)]
            if not all(fitting):
                break
        first = (year, this_year, fitting)
    if first is None:
        return None
    year, changes, fitting = first
    return year, tuple((change, _pick(rules)) for change, rules in zip(changes, fitting, strict=True))


def _there_and_back(one: _Change, other: _Change) -> bool:
    return one.offset_from == other.offset_to != one.offset_to == other.offset_from


def _rules_of(change: _Change) -> set[_Yearly]:
    """The yearly rules that put a change where it is: its weekday's n-th in the month, and the last one if so."""
    onset = change.onset
    time = (onset.hour, onset.minute, onset.second)
    rules = {_Yearly(onset.month, (onset.day - 1) // 7 + 1, onset.weekday(), time)}
    if onset.day + 7 > monthrange(onset.year, onset.month)[1]:
        rules.add(_Yearly(onset.month, -1, onset.weekday(), time))
    return rules


def _pick(rules: set[_Yearly]) -> _Yearly:
    """The "last weekday" rule when it fits (it holds in months of any length), else the n-th."""
    return min(rules, key=lambda rule: rule.week)
