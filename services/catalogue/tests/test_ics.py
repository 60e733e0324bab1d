"""The planning's iCalendar feed (catalogue.ics), read back by a second library (vobject, which builds each zone
from the feed's own VTIMEZONE, not from the machine's database)."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import vobject

from catalogue.ics import planning_calendar
from catalogue.local_time import to_local
from catalogue.series import Recurrence, occurrences

PARIS = "Europe/Paris"
PLANNING_URL = "https://visiopass.example/planning"


def session(starts_at: datetime, **changes: Any) -> dict[str, Any]:
    """A session as the catalogue's SessionView gives it (the keys an event uses)."""
    return {
        "id": str(uuid.uuid4()),
        "title": "Pronote : le cahier de textes",
        "description": "Saisir et retrouver le travail donné.",
        "agenda": "1. Saisie\n2. Consultation",
        "theme_title": "Pronote",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=90),
        "timezone": PARIS,
        "status": "published",
        "sequence": 0,
        "updated_at": datetime(2027, 3, 1, 9, 30, tzinfo=UTC),
    } | changes


def weekly_series() -> list[dict[str, Any]]:
    """Tuesdays and Sundays at 14:00 in Paris, from before the last Sunday of March 2027 (the 28th) to after the
    last Sunday of October (the 31st): the two clock-change days are among them."""
    rule = Recurrence("weekly", weekdays=("TU", "SU"), until=date(2027, 11, 9))
    return [session(start) for start in occurrences(rule, datetime(2027, 3, 21, 14, 0), PARIS)]


def tzid(value: Any) -> str | None:
    """The TZID a date-time was written with (vobject keeps it aside once it has read the zone)."""
    names = value.params.get("X-VOBJ-ORIGINAL-TZID") or value.params.get("TZID")
    return names[0] if names else None


def read_back(feed: bytes) -> dict[str, Any]:
    """The feed's events by UID, as vobject reads them."""
    calendar = vobject.readOne(feed.decode("utf-8"))
    return {event.uid.value: event for event in calendar.vevent_list}


def test_a_weekly_series_at_14h_in_paris_reads_back_at_the_same_instants_and_14h_across_both_clock_changes() -> None:
    sessions = weekly_series()
    days = {to_local(s["starts_at"], PARIS).date() for s in sessions}
    assert {date(2027, 3, 28), date(2027, 10, 31)} <= days  # the clock-change Sundays themselves
    events = read_back(planning_calendar(sessions, name="Planning Visiopass", url=PLANNING_URL))
    assert len(events) == len(sessions) == 68
    hours_utc = set()
    for expected in sessions:
        event = events[f"{expected['id']}@visiopass"]
        start, end = event.dtstart.value, event.dtend.value
        assert tzid(event.dtstart) == PARIS
        assert start.astimezone(UTC) == expected["starts_at"]
        assert end.astimezone(UTC) == expected["ends_at"]
        assert (start.time(), end.time()) == (time(14, 0), time(15, 30))  # wall time by the feed's VTIMEZONE
        hours_utc.add(start.astimezone(UTC).hour)
    assert hours_utc == {12, 13}  # summer and winter: the instant moved, the wall time did not


def test_summers_years_apart_read_back_in_summer_time() -> None:
    # Each zone's changes are written one RDATE a date: a reader that keeps only the first date of a list (vobject
    # does) would otherwise read every later summer as winter.
    summers = [session(datetime(year, 7, 6, 12, 0, tzinfo=UTC)) for year in (2027, 2031, 2036)]
    events = read_back(planning_calendar(summers, name="Planning", url=PLANNING_URL))
    for expected in summers:
        start = events[f"{expected['id']}@visiopass"].dtstart.value
        assert (start.astimezone(UTC), start.time()) == (expected["starts_at"], time(14, 0))


def test_the_feed_names_itself_describes_each_zone_used_and_links_each_session_to_its_page() -> None:
    paris = session(datetime(2027, 4, 6, 12, 0, tzinfo=UTC))
    reunion = session(datetime(2027, 4, 7, 6, 0, tzinfo=UTC), timezone="Indian/Reunion")
    feed = planning_calendar([paris, reunion], name="Planning Visiopass", url=PLANNING_URL + "/")
    calendar = vobject.readOne(feed.decode("utf-8"))
    assert calendar.contents["x-wr-calname"][0].value == "Planning Visiopass"
    assert sorted(zone.tzid.value for zone in calendar.vtimezone_list) == ["Europe/Paris", "Indian/Reunion"]
    events = read_back(feed)
    event = events[f"{reunion['id']}@visiopass"]
    assert event.dtstart.value.time() == time(10, 0)  # UTC+4
    assert event.dtstart.value.astimezone(UTC) == reunion["starts_at"]
    assert calendar.url.value == PLANNING_URL
    assert event.url.value == f"{PLANNING_URL}/sessions/{reunion['id']}"
    assert event.summary.value == reunion["title"]
    assert event.description.value == "Saisir et retrouver le travail donné.\n\n1. Saisie\n2. Consultation"
    assert event.dtstamp.value == event.last_modified.value == reunion["updated_at"]


def test_a_cancelled_session_stays_in_the_feed_as_cancelled() -> None:
    kept = session(datetime(2027, 5, 4, 12, 0, tzinfo=UTC))
    cancelled = session(datetime(2027, 5, 11, 12, 0, tzinfo=UTC), status="cancelled", sequence=1)
    finished = session(datetime(2027, 1, 5, 13, 0, tzinfo=UTC), status="finished")
    events = read_back(planning_calendar([kept, cancelled, finished], name="Planning", url=PLANNING_URL))
    assert events[f"{cancelled['id']}@visiopass"].status.value == "CANCELLED"
    assert events[f"{kept['id']}@visiopass"].status.value == "CONFIRMED"
    assert events[f"{finished['id']}@visiopass"].status.value == "CONFIRMED"


def test_a_rescheduled_session_keeps_its_uid_with_a_higher_sequence() -> None:
    before = session(datetime(2027, 6, 1, 12, 0, tzinfo=UTC))
    moved = before | {"starts_at": datetime(2027, 6, 3, 8, 0, tzinfo=UTC), "sequence": 1}
    moved["ends_at"] = moved["starts_at"] + timedelta(minutes=60)
    [first] = read_back(planning_calendar([before], name="Planning", url=PLANNING_URL)).items()
    [second] = read_back(planning_calendar([moved], name="Planning", url=PLANNING_URL)).items()
    assert first[0] == second[0] == f"{before['id']}@visiopass"
    assert (int(first[1].sequence.value), int(second[1].sequence.value)) == (0, 1)
    assert second[1].dtstart.value.astimezone(UTC) == moved["starts_at"]


def test_the_same_planning_is_the_same_bytes() -> None:
    sessions = weekly_series()[:5]
    assert planning_calendar(sessions, name="Planning", url=PLANNING_URL) == planning_calendar(
        sessions, name="Planning", url=PLANNING_URL
    )


def test_an_instant_in_the_second_autumn_hour_is_written_in_utc_and_reads_back_unmoved() -> None:
    # 31 October 2027 in Paris: 02:30 happens at 00:30 UTC (summer time) and again at 01:30 UTC (winter time).
    first = session(datetime(2027, 10, 31, 0, 30, tzinfo=UTC), ends_at=datetime(2027, 10, 31, 0, 45, tzinfo=UTC))
    second = session(datetime(2027, 10, 31, 1, 30, tzinfo=UTC), ends_at=datetime(2027, 10, 31, 2, 30, tzinfo=UTC))
    events = read_back(planning_calendar([first, second], name="Planning", url=PLANNING_URL))
    assert tzid(events[f"{first['id']}@visiopass"].dtstart) == PARIS
    assert tzid(events[f"{second['id']}@visiopass"].dtstart) is None  # written in UTC: 20271031T013000Z
    for expected in (first, second):
        event = events[f"{expected['id']}@visiopass"]
        assert event.dtstart.value.astimezone(UTC) == expected["starts_at"]
        assert event.dtend.value.astimezone(UTC) == expected["ends_at"]


def test_an_empty_planning_is_a_valid_calendar() -> None:
    calendar = vobject.readOne(planning_calendar([], name="Planning", url=PLANNING_URL).decode("utf-8"))
    assert calendar.name == "VCALENDAR"
    assert "vevent" not in calendar.contents


def test_a_draft_is_never_put_in_a_public_calendar() -> None:
    draft = session(datetime(2027, 6, 1, 12, 0, tzinfo=UTC), status="draft")
    with pytest.raises(ValueError, match="draft"):
        planning_calendar([draft], name="Planning", url=PLANNING_URL)
