"""The published planning as an RFC 5545 calendar (the `GET /internal/planning.ics` feed).

What a calendar program gets, and why:
- one VEVENT per session, its UID `<session id>@visiopass`, stable for the session's life, so that a program that
  subscribed updates the event in place; SEQUENCE is the session's `sequence` (bumped by each reschedule), which
  tells it that the new times win over the ones it holds;
- DTSTART and DTEND in the session's own zone (`TZID`), with a VTIMEZONE for each zone used: a program reads 14:00
  Europe/Paris as the organiser meant it, whatever its own rules for that zone. The VTIMEZONE is the one the
  invitations carry (`servicekit.calendar`: yearly rules, as Outlook reads them, holding up to 2038 at least, not
  only the feed's dates: programs keep a zone by its TZID once read); the autumn fall-back hour is written in UTC;
- STATUS:CANCELLED for a cancelled session (kept in the feed so that programs remove or strike it out),
  CONFIRMED for a published or finished one; a draft is never in a public feed, so it is refused here;
- DTSTAMP and LAST-MODIFIED are the session's `updated_at` when it is given: without METHOD, DTSTAMP is when the
  event was last revised (RFC 5545, 3.8.7.2), and the same feed twice is the same bytes. Without `updated_at`,
  DTSTAMP is the time of rendering (it is required) and LAST-MODIFIED is left out.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from servicekit.calendar import vtimezone, zoned_times

PRODID = "-//Visiopass//Planning//FR"
STATUSES = {"published": "CONFIRMED", "finished": "CONFIRMED", "cancelled": "CANCELLED"}
REFRESH = timedelta(hours=1)  # how often a subscribed program should fetch the feed again


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
    events, spans = [], {}  # the first start and last end of the sessions written in each zone
    for session in sessions:
        event = _event(session, planning, rendered_at)
        events.append(event)
        if zone := event["DTSTART"].params.get("TZID"):  # none when written in UTC
            first, last = spans.get(zone, (session["starts_at"], session["ends_at"]))
            spans[zone] = (min(first, session["starts_at"]), max(last, session["ends_at"]))
    for zone, (first, last) in sorted(spans.items()):
        calendar.add_component(vtimezone(zone, first, last))
    for event in events:
        calendar.add_component(event)
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
    start, end = zoned_times(session["starts_at"], session["ends_at"], ZoneInfo(session["timezone"]))
    event.add("dtstart", start)
    event.add("dtend", end)
    updated_at = session.get("updated_at")
    event.add("dtstamp", (updated_at or rendered_at).astimezone(UTC))
    if updated_at is not None:
        event.add("last-modified", updated_at.astimezone(UTC))
    return event
