"""Local wall-clock times of sessions and their UTC instants.

Sessions are entered and shown in their IANA time zone (Europe/Paris by default) and stored in UTC. Two kinds of
wall time have no single instant, and each has one rule:
- a time that does not exist (the spring-forward gap: 02:30 on 28 March 2027 in Paris) is refused with
  `NonexistentLocalTime`, whose message names the gap; callers that must place it anyway (a series' later
  occurrences) pass `shift_gap=True` and get it moved forward by the gap's length (02:30 -> 03:30 summer time);
- a time that happens twice (the autumn fall-back hour: 02:30 on 31 October 2027 in Paris) is its FIRST occurrence
  (fold=0: summer time, the earlier UTC instant) unless the caller passes fold=1.
Both rules are how RFC 5545 (3.3.5) reads a local time in a time zone.

A zone name is accepted only if it is an IANA zone the machine's time zone database knows; anything else (empty,
overlong, a path, "localtime") is `UnknownTimeZone`, and no file outside the database is ever opened.
"""

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_TIME_ZONE = "Europe/Paris"
MAX_NAME_LENGTH = 64  # the longest IANA name, America/Argentina/ComodRivadavia, has 32 characters
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class UnknownTimeZone(ValueError):
    code = "unknown_time_zone"

    def __init__(self, name: object) -> None:
        shown = repr(name) if len(repr(name)) <= MAX_NAME_LENGTH else repr(name)[:MAX_NAME_LENGTH] + "…"
        super().__init__(f"{shown} is not an IANA time zone (such as Europe/Paris)")
        self.name = name


class NonexistentLocalTime(ValueError):
    """A wall time skipped by the clocks. `gap_start` and `gap_end` are the wall times the clocks jump between."""

    code = "nonexistent_local_time"

    def __init__(self, local: datetime, tz: str, gap_start: datetime, gap_end: datetime) -> None:
        if gap_start.date() == gap_end.date():
            jump = f"clocks go from {_clock(gap_start)} to {_clock(gap_end)}"
        else:
            jump = f"clocks go from {_clock(gap_start)} on {_day(gap_start)} to {_clock(gap_end)} on {_day(gap_end)}"
        super().__init__(f"{_clock(local)} does not exist on {_day(local)} in {tz}: {jump}")
        self.local = local
        self.tz = tz
        self.gap_start = gap_start
        self.gap_end = gap_end


@cache
def _iana_names() -> frozenset[str]:
    # "localtime" may sit in a system zone directory as a link to the machine's own setting: not an IANA zone.
    return frozenset(available_timezones() - {"localtime"})


def zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH or name not in _iana_names():
        raise UnknownTimeZone(name)
    return ZoneInfo(name)


def exists(local: datetime, tz: str) -> bool:
    """Whether a naive wall time happens at all in the zone (False in a spring-forward gap)."""
    return _exists(_naive(local), zone(tz))


def to_utc(local: datetime, tz: str, *, fold: int = 0, shift_gap: bool = False) -> datetime:
    """The UTC instant of a naive wall time in the zone; see the module docstring for the gap and fold rules."""
    where = zone(tz)
    local = _naive(local)
    if fold not in (0, 1):
        raise ValueError(f"fold is 0 or 1, not {fold!r}")
    if not _exists(local, where):
        if not shift_gap:
            raise NonexistentLocalTime(local, tz, *_gap(local, where))
        fold = 0  # read with the offset before the gap, which moves it forward by the gap's length
    return local.replace(tzinfo=where, fold=fold).astimezone(UTC)


def to_local(utc: datetime, tz: str) -> datetime:
    """The aware wall time in the zone of an aware instant."""
    if utc.tzinfo is None:
        raise ValueError(f"to_local takes an aware instant, not the naive {utc.isoformat()}")
    return utc.astimezone(zone(tz))


def _naive(local: datetime) -> datetime:
    if local.tzinfo is not None:
        raise ValueError(f"expected a naive local time, not the aware {local.isoformat()}")
    return local


def _exists(local: datetime, where: ZoneInfo) -> bool:
    # A wall time exists when it survives the round trip to UTC and back. In a gap it never does, whatever the
    # fold: fold=0 reads it with the offset before the gap (coming back later), fold=1 with the one after (earlier).
    back = local.replace(tzinfo=where).astimezone(UTC).astimezone(where)
    return back.replace(tzinfo=None, fold=0) == local.replace(fold=0)


def _gap(local: datetime, where: ZoneInfo) -> tuple[datetime, datetime]:
    """The wall times the clocks jump between around a nonexistent `local` (start included, end excluded)."""
    before = local.replace(tzinfo=where, fold=0).utcoffset() or timedelta(0)
    after = local.replace(tzinfo=where, fold=1).utcoffset() or timedelta(0)
    # The transition instant lies in (local - after, local - before]: bisect it to the second.
    low = int((local - after).replace(tzinfo=UTC).timestamp())
    high = int((local - before).replace(tzinfo=UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, where).utcoffset() == after:
            high = middle
        else:
            low = middle
    transition = datetime.fromtimestamp(high, UTC).replace(tzinfo=None)
    return transition + before, transition + after


def _clock(wall: datetime) -> str:
    return f"{wall:%H:%M:%S}" if wall.second else f"{wall:%H:%M}"


def _day(wall: datetime) -> str:
    return f"{wall.day} {MONTHS[wall.month - 1]} {wall.year}"
