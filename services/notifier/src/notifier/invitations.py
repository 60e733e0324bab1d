"""Calendar invitations that a mail carries (iCalendar, RFC 5545, sent by iTIP, RFC 5546, over iMIP, RFC 6047).

What a calendar program gets, and why:
- one VEVENT per enrolment, its UID `enrolment-<enrollment id>@visiopass`, stable for the enrolment's life: a
  reschedule sent with a higher SEQUENCE updates the entry the first mail made, a CANCEL with the same UID and a
  higher SEQUENCE removes it. It is not the planning feed's UID (`<session id>@visiopass`): a person who subscribed
  to the feed and also receives the invitation keeps two entries that do not overwrite each other. The caller owns
  the SEQUENCE (the session's, bumped by each reschedule; a cancellation one above the last one sent); a
  cancellation is at least 1, since it always follows a request;
- DTSTART and DTEND in the session's own zone (TZID) with its VTIMEZONE, written as Outlook and Google write theirs:
  one DAYLIGHT and one STANDARD rule repeating yearly (RRULE), not a list of dates (RDATE), which Outlook is known
  to misread (its summer events come out an hour off). The rules are read from the zone's own changes (zoneinfo),
  from the first year they hold to 2038 at least; a zone without such rules at the session's date gets one STANDARD
  part when its offset no longer changes, else its exact changes, one RDATE line each (vobject keeps only the first
  date of a list). A wall time that happens twice (the autumn fall-back hour) means its first occurrence (RFC 5545,
  3.3.5): an instant in the second one is written in UTC instead, so that no instant is ever moved;
- ORGANIZER (the address the mail comes from) and one ATTENDEE (the recipient) with RSVP=FALSE and
  PARTSTAT=ACCEPTED: enrolling was the acceptance, so programs offer no Accept/Decline answer to a mailbox that does
  not read them; STATUS:CONFIRMED, or CANCELLED with METHOD:CANCEL;
- SUMMARY, DESCRIPTION, URL and LOCATION (the join page unless another location is given: the field every program
  shows, and makes a link of); DTSTAMP, when this invitation was made (RFC 5545, 3.8.7.2, with a METHOD).

`attach_invitation` puts it in a mail the way Google Calendar does, which every program reads: a
`text/calendar; method=...` alternative beside the text and HTML bodies (what Outlook and Gmail turn into the
invitation banner), and the same bytes as an `invite.ics` attachment (`application/ics`, so that a program does not
take it for a second invitation) for the programs that only open files. Both parts are base64: the bytes are the
ones made, and no relay rewrites a line of them. Attach before the mail is signed (DKIM): the signature covers the
body.
"""

import uuid
from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from functools import lru_cache
from typing import Literal, cast
from zoneinfo import ZoneInfo

import icalendar

from notifier.service import binary_part

PRODID = "-//Visiopass//Invitations//FR"
FILENAME = "invite.ics"
STATUSES = {"REQUEST": "CONFIRMED", "CANCEL": "CANCELLED"}
RULES_FROM, RULES_UNTIL = 1970, 2038  # the years scanned for a zone's changes, at least
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

Method = Literal["REQUEST", "CANCEL"]


def uid(enrollment_id: uuid.UUID) -> str:
    """The UID of an enrolment's calendar entry, the same in every invitation about it."""
    return f"enrolment-{enrollment_id}@visiopass"


def invitation(
    *,
    enrollment_id: uuid.UUID,
    session_id: uuid.UUID,
    title: str,
    description: str,
    starts_at: datetime,
    ends_at: datetime,
    timezone: str,
    url: str,
    organizer_email: str,
    attendee_email: str,
    sequence: int,
    method: Method = "REQUEST",
    location: str | None = None,
    organizer_name: str | None = None,
    dtstamp: datetime | None = None,
) -> bytes:
    """The iCalendar object inviting `attendee_email` to a session (REQUEST), or withdrawing the invitation
    (CANCEL). `starts_at`, `ends_at` and `dtstamp` (default: now) are aware instants; `timezone` is the session's
    IANA zone; `url` its join page; `organizer_email` the mail's From address (programs check it)."""
    if method not in STATUSES:
        raise ValueError(f"an invitation's method is REQUEST or CANCEL, not {method!r}")
    if sequence < 0 or (method == "CANCEL" and sequence < 1):
        raise ValueError("a SEQUENCE is never negative, and a cancellation's is above its request's")
    if starts_at.tzinfo is None or ends_at.tzinfo is None or (dtstamp is not None and dtstamp.tzinfo is None):
        raise ValueError("an invitation's times are aware instants")
    if ends_at <= starts_at:
        raise ValueError("a session ends after it starts")
    zone = ZoneInfo(timezone)

    event = icalendar.Event()
    event.add("uid", uid(enrollment_id))
    event.add("sequence", sequence)
    event.add("dtstamp", (dtstamp or datetime.now(UTC)).astimezone(UTC))
    start, end = _times(starts_at, ends_at, zone)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("status", STATUSES[method])
    event.add("summary", title)
    if description:
        event.add("description", description)
    event.add("url", _line(url, "a URL"))
    event.add("location", location or url)
    event.add("organizer", _address(organizer_email, {"CN": organizer_name} if organizer_name else {}))
    event.add(
        "attendee",
        _address(attendee_email, {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"}),
    )
    event.add("transp", "OPAQUE")
    event.add("x-visiopass-session", str(session_id))

    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if start.tzinfo is not UTC:
        calendar.add_component(vtimezone(timezone, starts_at, ends_at))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def attach_invitation(message: Message, ics: bytes, method: Method) -> None:
    """Add `ics` (made by `invitation` with this `method`) to a composed mail (`service.compose`): a
    `text/calendar; method=...` alternative of its body, and an `invite.ics` attachment. Call it before the mail
    is signed."""
    written = icalendar.Calendar.from_ical(ics).get("METHOD")
    if method not in STATUSES or str(written) != method:
        raise ValueError(f"the invitation's METHOD is {written}, the mail says {method!r}")
    if any(part.get_content_type() == "text/calendar" for part in message.walk()):
        raise ValueError("the mail already carries an invitation")
    if message.get_content_type() != "multipart/mixed":
        _make_multipart(message, "mixed")
    parts = _parts(message)  # compose() puts the body first, then the attachments
    if not parts or parts[0].get_content_disposition() == "attachment":
        raise ValueError("the mail has no body to put the invitation beside")
    body = parts[0]
    if body.get_content_type() != "multipart/alternative":
        _make_multipart(body, "alternative")
    calendar = binary_part(ics, f"text/calendar; method={method}; charset=UTF-8")
    body.set_payload([*_parts(body), calendar])
    message.set_payload([*parts, binary_part(ics, f'application/ics; name="{FILENAME}"', filename=FILENAME)])


def _parts(multipart: Message) -> list[Message]:
    return cast(list[Message], multipart.get_payload())


def _make_multipart(part: Message, subtype: str) -> None:
    """Turn `part` into a multipart/`subtype` whose first part is what it held (its Content-* headers and
    payload); its other headers (From, To, MIME-Version, Content-Language: the mail's) stay where they are."""
    if part.is_multipart() and part.get_content_subtype() in ("mixed", subtype):
        raise ValueError(f"cannot make a {part.get_content_type()} a multipart/{subtype}")
    content = [
        (name, value)
        for name, value in part.items()
        if name.lower().startswith("content-") and name.lower() != "content-language"
    ]
    inner = Message()
    for name, value in content:
        inner[name] = value
    inner.set_payload(part.get_payload())
    for name in {name for name, _ in content}:
        del part[name]
    part["Content-Type"] = f"multipart/{subtype}"
    part.set_payload([inner])


def _address(email: str, parameters: dict[str, str]) -> icalendar.vCalAddress:
    if "@" not in email:
        raise ValueError(f"{email!r} is not an email address")
    address = icalendar.vCalAddress(f"mailto:{_line(email, 'an email address')}")
    address.params.update(parameters)
    return address


def _line(value: str, what: str) -> str:
    """`value`, which iCalendar does not escape, if it cannot break a line or hide a property."""
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValueError(f"{what} holds no space or control character: {value!r}")
    return value


def _times(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end in the zone (written with its TZID), or both in UTC when either wall time is the second
    occurrence of an hour that happens twice (a TZID wall time would mean the first one)."""
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
    """The VTIMEZONE of `timezone` that is right for a session from `starts_at` to `ends_at` (see the module
    docstring for its form)."""
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
