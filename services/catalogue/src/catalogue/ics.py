"""The published planning as an RFC 5545 calendar (the `GET /internal/planning.ics` feed).

What a calendar program gets, and why:
- one VEVENT per session, its UID `<session id>@visiopass`, stable for the session's life, so that a program that
  subscribed updates the event in place; SEQUENCE is the session's `sequence` (bumped by each reschedule), which
  tells it that the new times win over the ones it holds;
- DTSTART and DTEND in the session's own zone (`TZID`), with a VTIMEZONE for each zone used: a program reads 14:00
  Europe/Paris as the organiser meant it, whatever its own rules for that zone. Each VTIMEZONE holds the zone's
  changes from 1970 to 2038 (further when a session is later), not only those of the feed's dates: programs keep a
  zone by its TZID once read (vobject does), and a zone cut to one feed's dates would mislead them about the next.
  Each change is an RDATE of its own: RFC 5545 allows one property with many dates, but some readers (vobject)
  keep only the first of them, and would put every later summer in winter time. A wall time that happens twice
  (the autumn fall-back hour) means its first occurrence in RFC 5545 (3.3.5): an instant in the second one is
  written in UTC instead, so that no instant is ever moved;
- STATUS:CANCELLED for a cancelled session (kept in the feed so that programs remove or strike it out),
  CONFIRMED for a published or finished one; a draft is never in a public feed, so it is refused here;
- DTSTAMP and LAST-MODIFIED are the session's `updated_at` when it is given: without METHOD, DTSTAMP is when the
  event was last revised (RFC 5545, 3.8.7.2), and the same feed twice is the same bytes. Without `updated_at`,
  DTSTAMP is the time of rendering (it is required) and LAST-MODIFIED is left out.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//Visiopass//Planning//FR"
STATUSES = {"published": "CONFIRMED", "finished": "CONFIRMED", "cancelled": "CANCELLED"}
REFRESH = timedelta(hours=1)  # how often a subscribed program should fetch the feed again
RULES_FROM, RULES_UNTIL = date(1970, 1, 1), date(2038, 1, 1)  # the span of each VTIMEZONE, at least


def planning_calendar(sessions: Iterable[Mapping[str, Any]], *, name: str, url: str) -> bytes:
    """The calendar `name` of `sessions`. `url` is the planning's page on the portal (the gateway's public base URL
    + `/planning`): the calendar's own URL, and each session's page is `{url}/sessions/{id}`.

    A session is a mapping with the keys of the catalogue's SessionView that an event needs: `id`, `title`,
    `description`, `agenda` (may be empty), `theme_title` (optional), `starts_at` and `ends_at` (aware datetimes),
    `timezone` (IANA), `status` (published, cancelled or finished), `sequence` (int), and optionally `updated_at`
    (aware datetime)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("name", name)  # RFC 7986
    calendar.add("x-wr-calname", name)  # what most programs read
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(REFRESH))
    planning = url.rstrip("/")
    calendar.add("url", planning)
    rendered_at = datetime.now(UTC)
    first, last = None, None
    for session in sessions:
        calendar.add_component(_event(session, planning, rendered_at))
        first = min(first or session["starts_at"], session["starts_at"])
        last = max(last or session["ends_at"], session["ends_at"])
    if first is not None and last is not None:
        calendar.add_missing_timezones(
            first_date=min(RULES_FROM, (first - timedelta(days=1)).date()),
            last_date=max(RULES_UNTIL, (last + timedelta(days=1)).date()),
        )
        _one_date_per_rdate(calendar)
    return bytes(calendar.to_ical())


def _event(session: Mapping[str, Any], planning: str, rendered_at: datetime) -> icalendar.Event:
    status = session["status"]
    if status not in STATUSES:
        raise ValueError(f"a {status} session is not in a public calendar")
    event = icalendar.Event()
    event.add("uid", f"{session['id']}@visiopass")
    event.add("sequence", int(session["sequence"]))
    event.add("status", STATUSES[status])
    event.add("summary", session["title"])
    description = "\n\n".join(part for part in (session["description"], session.get("agenda") or "") if part)
    if description:
        event.add("description", description)
    if session.get("theme_title"):
        event.add("categories", [session["theme_title"]])
    event.add("url", f"{planning}/sessions/{session['id']}")
    start, end = _times(session["starts_at"], session["ends_at"], ZoneInfo(session["timezone"]))
    event.add("dtstart", start)
    event.add("dtend", end)
    updated_at = session.get("updated_at")
    event.add("dtstamp", (updated_at or rendered_at).astimezone(UTC))
    if updated_at is not None:
        event.add("last-modified", updated_at.astimezone(UTC))
    return event


def _times(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end in the zone (written with its TZID), or both in UTC when either wall time is the second
    occurrence of an hour that happens twice (a TZID wall time would mean the first one)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("a session's start and end are aware instants")
    local = (starts_at.astimezone(zone), ends_at.astimezone(zone))
    if any(wall.replace(fold=0).astimezone(UTC) != wall.astimezone(UTC) for wall in local):
        return starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    return local


def _one_date_per_rdate(calendar: icalendar.Calendar) -> None:
    """Each VTIMEZONE's RDATE lists as one RDATE property per date (see the module docstring)."""
    for rule in calendar.walk():
        if rule.name in ("STANDARD", "DAYLIGHT") and "RDATE" in rule:
            listed = rule.pop("RDATE")
            for dates in listed if isinstance(listed, list) else [listed]:
                for value in dates.dts:
                    rule.add("rdate", value.dt)
