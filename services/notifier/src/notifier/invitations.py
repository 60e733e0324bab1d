"""Calendar invitations that a mail carries (iCalendar, RFC 5545, sent by iTIP, RFC 5546, over iMIP, RFC 6047).

What a calendar program gets, and why:
- one VEVENT per enrolment, its UID `enrolment-<enrollment id>@visiopass`, stable for the enrolment's life: a
  reschedule sent with a higher SEQUENCE updates the entry the first mail made, a CANCEL with the same UID and a
  higher SEQUENCE removes it. It is not the planning feed's UID (`<session id>@visiopass`): a person who subscribed
  to the feed and also receives the invitation keeps two entries that do not overwrite each other. The caller owns
  the SEQUENCE (the session's, bumped by each reschedule; a cancellation one above the last one sent); a
  cancellation is at least 1, since it always follows a request;
- DTSTART and DTEND in the session's own zone (TZID) with its VTIMEZONE as yearly rules (`servicekit.calendar`:
  what Outlook reads, and the fall-back hour written in UTC);
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
from datetime import UTC, datetime
from email.message import Message
from typing import Literal, cast
from zoneinfo import ZoneInfo

import icalendar

from notifier.service import binary_part
from servicekit.calendar import vtimezone, zoned_times

PRODID = "-//Visiopass//Invitations//FR"
FILENAME = "invite.ics"
STATUSES = {"REQUEST": "CONFIRMED", "CANCEL": "CANCELLED"}

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
    start, end = zoned_times(starts_at, ends_at, zone)
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
