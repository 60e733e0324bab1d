"""Calendar invitations (notifier.invitations), read back by a second library (vobject) and, in a mail, by the
`email` package.

vobject keeps the first zone it reads under a TZID for the rest of the process, so the tests also build each zone
from the invitation's own VTIMEZONE (`gettzinfo`): what a program that has never seen the zone would use."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import Message
from email.mime.text import MIMEText
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
import vobject

from notifier.invitations import attach_invitation, invitation
from notifier.mailer import to_wire
from notifier.service import Attachment, Rendered, compose

PARIS = "Europe/Paris"
JOIN = "https://visiopass.example/join/3f9c2a"
ENROLLMENT = uuid.UUID("6b1f3c1e-8a55-4d6e-9a0e-2f4b8c7d9e10")
SESSION = uuid.UUID("0d7e5f2a-1b3c-4d5e-8f90-a1b2c3d4e5f6")


def make(starts_at: datetime, **changes: Any) -> bytes:
    """An invitation to a 90-minute session in Paris, with `changes` to its arguments."""
    arguments: dict[str, Any] = {
        "enrollment_id": ENROLLMENT,
        "session_id": SESSION,
        "title": "Pronote : le cahier de textes, niveau 1; suite",
        "description": "Saisir et retrouver le travail donné.\nLien de participation : " + JOIN,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=90),
        "timezone": PARIS,
        "url": JOIN,
        "organizer_email": "no-reply@visiopass.example",
        "attendee_email": "camille.martin@lycee-hugo.example",
        "sequence": 0,
    }
    return invitation(**(arguments | changes))


def paris(day: date, hour: int = 14) -> datetime:
    """The instant of `hour` o'clock in Paris on `day`, in UTC (as the catalogue gives a session's start)."""
    return datetime.combine(day, time(hour), ZoneInfo(PARIS)).astimezone(UTC)


def read(ics: bytes) -> Any:
    return vobject.readOne(ics.decode("utf-8"))


def tzid(value: Any) -> str | None:
    """The TZID a date-time was written with (vobject keeps it aside once it has read the zone)."""
    names = value.params.get("X-VOBJ-ORIGINAL-TZID") or value.params.get("TZID")
    return names[0] if names else None


# 28 March 2027 (clocks go forward at 02:00) and 31 October 2027 (back at 03:00): 14:00 in Paris is 13:00 UTC in
# winter and 12:00 UTC in summer.
AROUND_THE_CHANGES = [
    (date(2027, 3, 27), 13),
    (date(2027, 3, 28), 12),
    (date(2027, 10, 30), 12),
    (date(2027, 10, 31), 13),
]


@pytest.mark.parametrize(("day", "utc_hour"), AROUND_THE_CHANGES, ids=lambda value: str(value))
def test_a_session_at_14h_in_paris_reads_back_at_the_same_instants_on_both_sides_of_each_clock_change(
    day: date, utc_hour: int
) -> None:
    starts_at = paris(day)
    assert starts_at.hour == utc_hour
    calendar = read(make(starts_at))
    event = calendar.vevent
    assert tzid(event.dtstart) == tzid(event.dtend) == PARIS
    assert event.dtstart.value.astimezone(UTC) == starts_at
    assert event.dtend.value.astimezone(UTC) == starts_at + timedelta(minutes=90)
    assert calendar.vtimezone.tzid.value == PARIS
    own_zone = calendar.vtimezone.gettzinfo()  # the invitation's VTIMEZONE alone, as a program new to it reads it
    assert starts_at.astimezone(own_zone).time() == time(14, 0)
    assert (starts_at + timedelta(minutes=90)).astimezone(own_zone).time() == time(15, 30)


def test_the_zone_is_written_as_two_yearly_rules_that_hold_for_years_after_the_session() -> None:
    # Outlook reads a zone given as yearly rules (RRULE), as Outlook and Google write theirs; given as a list of
    # dates (RDATE) it puts every summer in winter time.
    calendar = read(make(paris(date(2027, 3, 28))))
    parts = {part.name: part for part in calendar.vtimezone.getChildren() if part.name != "TZID"}
    assert set(parts) == {"DAYLIGHT", "STANDARD"}
    assert parts["DAYLIGHT"].rrule.value == "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
    assert parts["STANDARD"].rrule.value == "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"
    assert all("rdate" not in part.contents for part in parts.values())
    own_zone = calendar.vtimezone.gettzinfo()
    for day, offset in [(date(2031, 7, 6), 2), (date(2031, 12, 6), 1), (date(2040, 7, 6), 2), (date(2026, 1, 6), 1)]:
        assert paris(day).astimezone(own_zone).utcoffset() == timedelta(hours=offset)


def changes_in(zone_name: str, year: int) -> list[datetime]:
    """The instants (UTC) at which the zone's offset changes in `year`, to the hour."""
    zone = ZoneInfo(zone_name)
    moments = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=hours) for hours in range(366 * 24)]
    return [b for a, b in pairwise(moments) if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()]


@pytest.mark.parametrize(
    "zone_name",
    [
        "America/New_York",  # second Sunday of March, first of November
        "Australia/Sydney",  # southern: summer over new year
        "Europe/London",
        "Asia/Jerusalem",  # the Friday before the last Sunday: no yearly rule, written date by date
        "America/Santiago",  # no yearly rule either
        "Africa/Casablanca",  # changes around Ramadan
        "Indian/Reunion",  # no change at all
        "Europe/Istanbul",  # no change since 2016
    ],
)
def test_14h_in_other_zones_reads_back_at_the_same_instants_around_each_change(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    days = {(change - timedelta(days=1)).date() for change in changes_in(zone_name, 2027)}
    days |= {(change + timedelta(days=1)).date() for change in changes_in(zone_name, 2027)} | {date(2027, 6, 1)}
    for day in sorted(days):
        starts_at = datetime.combine(day, time(14), zone).astimezone(UTC)
        calendar = read(make(starts_at, timezone=zone_name))
        assert calendar.vevent.dtstart.value.astimezone(UTC) == starts_at, day
        assert starts_at.astimezone(calendar.vtimezone.gettzinfo()).time() == time(14, 0), day


def test_an_invitation_names_organizer_and_attendee_and_links_the_join_page() -> None:
    stamp = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    calendar = read(make(paris(date(2027, 4, 6)), organizer_name="Visiopass", dtstamp=stamp))
    assert calendar.method.value == "REQUEST"
    assert calendar.version.value == "2.0"
    assert calendar.prodid.value == "-//Visiopass//Invitations//FR"
    event = calendar.vevent
    assert event.uid.value == f"enrolment-{ENROLLMENT}@visiopass"
    assert int(event.sequence.value) == 0
    assert event.status.value == "CONFIRMED"
    assert event.summary.value == "Pronote : le cahier de textes, niveau 1; suite"
    assert event.description.value == "Saisir et retrouver le travail donné.\nLien de participation : " + JOIN
    assert event.url.value == event.location.value == JOIN
    assert event.dtstamp.value == stamp
    assert event.organizer.value == "mailto:no-reply@visiopass.example"
    assert event.organizer.params["CN"] == ["Visiopass"]
    assert event.attendee.value == "mailto:camille.martin@lycee-hugo.example"
    assert event.attendee.params["RSVP"] == ["FALSE"]
    assert event.attendee.params["PARTSTAT"] == ["ACCEPTED"]
    assert event.contents["x-visiopass-session"][0].value == str(SESSION)


def test_a_location_given_replaces_the_join_page_as_location_only() -> None:
    event = read(make(paris(date(2027, 4, 6)), location="Salle 12, 2e étage")).vevent
    assert event.location.value == "Salle 12, 2e étage"
    assert event.url.value == JOIN


def test_a_reschedule_keeps_the_uid_with_a_higher_sequence_and_the_new_times() -> None:
    first = read(make(paris(date(2027, 6, 1)))).vevent
    moved_to = paris(date(2027, 6, 3), hour=10)
    second = read(make(moved_to, sequence=1)).vevent
    assert first.uid.value == second.uid.value == f"enrolment-{ENROLLMENT}@visiopass"
    assert (int(first.sequence.value), int(second.sequence.value)) == (0, 1)
    assert second.dtstart.value.astimezone(UTC) == moved_to


def test_a_cancellation_has_method_cancel_and_status_cancelled_for_the_same_uid() -> None:
    starts_at = paris(date(2027, 6, 1))
    request = read(make(starts_at, sequence=1))
    cancel = read(make(starts_at, sequence=2, method="CANCEL"))
    assert (request.method.value, cancel.method.value) == ("REQUEST", "CANCEL")
    assert cancel.vevent.status.value == "CANCELLED"
    assert cancel.vevent.uid.value == request.vevent.uid.value
    assert int(cancel.vevent.sequence.value) > int(request.vevent.sequence.value)
    # iTIP (RFC 5546, 3.2.5): a CANCEL names the organizer and the attendees it is withdrawn from.
    assert cancel.vevent.organizer.value == request.vevent.organizer.value
    assert cancel.vevent.attendee.value == request.vevent.attendee.value
    assert cancel.vevent.dtstart.value.astimezone(UTC) == starts_at


def test_a_cancellation_always_has_a_sequence_above_a_first_request() -> None:
    with pytest.raises(ValueError, match="SEQUENCE"):
        make(paris(date(2027, 6, 1)), sequence=0, method="CANCEL")


def test_an_instant_in_the_second_autumn_hour_is_written_in_utc_and_reads_back_unmoved() -> None:
    # 31 October 2027 in Paris: 02:30 happens at 00:30 UTC (summer time) and again at 01:30 UTC (winter time).
    second = datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    ics = make(second, ends_at=second + timedelta(minutes=60))
    assert b"DTSTART:20271031T013000Z" in ics
    event = read(ics).vevent
    assert tzid(event.dtstart) is None
    assert event.dtstart.value.astimezone(UTC) == second
    first = datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    event = read(make(first, ends_at=first + timedelta(minutes=15))).vevent
    assert tzid(event.dtstart) == PARIS
    assert event.dtstart.value.astimezone(UTC) == first


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ends_at": datetime(2027, 6, 1, 14, 0)}, "aware"),
        ({"ends_at": datetime(2027, 6, 1, 11, 0, tzinfo=UTC)}, "ends after"),
        ({"sequence": -1}, "SEQUENCE"),
        ({"method": "PUBLISH"}, "REQUEST or CANCEL"),
        ({"attendee_email": "camille@lycee.example\r\nATTENDEE:mailto:x@y.example"}, "control"),
        ({"url": "https://visiopass.example/join/a b"}, "space"),
        ({"organizer_email": "no-reply"}, "email address"),
    ],
)
def test_what_cannot_make_a_right_invitation_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(datetime(2027, 6, 1, 12, 0, tzinfo=UTC), **changes)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        make(datetime(2027, 6, 1, 12, 0, tzinfo=UTC), timezone="Europe/Atlantis")


# The mail ---------------------------------------------------------------------------------------------------------


def composed(shape: str) -> Message:
    """A mail as notifier.service.compose builds one: text and HTML, maybe a PDF; or text alone."""
    if shape == "text":
        message = MIMEText("Bonjour,\n", "plain", "utf-8")
        message["From"] = "Visiopass <no-reply@visiopass.example>"
        message["To"] = "camille.martin@lycee-hugo.example"
        message["Subject"] = "Votre inscription est confirmee"
        return message
    files = [Attachment("facture.pdf", b"%PDF-1.7\n")] if shape == "with a pdf" else []
    rendered = Rendered("Votre inscription est confirmée", "Bonjour,\n", "<p>Bonjour,</p>\n")
    return compose("Visiopass <no-reply@visiopass.example>", "camille.martin@lycee-hugo.example", rendered, "fr", files)


@pytest.mark.parametrize("shape", ["text and html", "with a pdf", "text"])
@pytest.mark.parametrize(("method", "sequence"), [("REQUEST", 0), ("CANCEL", 1)])
def test_the_mail_carries_the_invitation_as_a_calendar_alternative_and_an_ics_attachment(
    shape: str, method: Any, sequence: int
) -> None:
    ics = make(paris(date(2027, 3, 28)), method=method, sequence=sequence)
    message = composed(shape)
    attach_invitation(message, ics, method)
    parsed = message_from_bytes(to_wire(message), policy=policy.default)

    assert parsed.get_content_type() == "multipart/mixed"
    body, *attachments = parsed.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    alternatives = list(body.iter_parts())
    expected = ["text/plain", "text/calendar"] if shape == "text" else ["text/plain", "text/html", "text/calendar"]
    assert [part.get_content_type() for part in alternatives] == expected
    calendar = alternatives[-1]
    assert calendar.get_param("method") == method
    assert calendar.get_content_charset() == "utf-8"
    assert not calendar.is_attachment()
    assert calendar.get_payload(decode=True) == ics
    assert read(calendar.get_content().encode("utf-8")).method.value == method

    by_name = {part.get_filename(): part for part in attachments}
    assert set(by_name) == ({"facture.pdf", "invite.ics"} if shape == "with a pdf" else {"invite.ics"})
    invite = by_name["invite.ics"]
    assert invite.is_attachment()
    assert invite.get_content_type() == "application/ics"
    assert invite.get_content() == ics
    if shape == "with a pdf":
        assert by_name["facture.pdf"].get_content() == b"%PDF-1.7\n"
    assert parsed.get_body(preferencelist=("plain",)).get_content().splitlines() == ["Bonjour,"]
    if shape != "text":  # the mail's own headers stay on top
        assert (parsed["Content-Language"], parsed["Subject"]) == ("fr", "Votre inscription est confirmée")
        assert [part for part in parsed.walk() if part is not parsed and part["Content-Language"]] == []


def test_the_method_of_the_mail_must_be_the_invitations() -> None:
    ics = make(paris(date(2027, 3, 28)))
    with pytest.raises(ValueError, match="METHOD"):
        attach_invitation(composed("text and html"), ics, "CANCEL")


def test_a_mail_carries_one_invitation() -> None:
    ics = make(paris(date(2027, 3, 28)))
    message = composed("text and html")
    attach_invitation(message, ics, "REQUEST")
    with pytest.raises(ValueError, match="already"):
        attach_invitation(message, ics, "REQUEST")
