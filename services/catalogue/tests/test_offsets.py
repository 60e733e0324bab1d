"""The scheduler's plan (catalogue.offsets): due times, what a late-created session still gets, the catch-up rule."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from catalogue.offsets import OFFSETS, Offset, Planned, due_at, plan, still_matters

STARTS = datetime(2027, 5, 20, 14, 0, tzinfo=UTC)
ENDS = STARTS + timedelta(hours=1, minutes=30)
SECOND = timedelta(seconds=1)


def names(planned: list[Planned]) -> list[Offset]:
    return [offset for offset, _ in planned]


def caught_up(now: datetime, created_at: datetime) -> list[Offset]:
    """What a scheduler back at `now` sends: the planned offsets already due that still matter."""
    return [
        offset
        for offset, due in plan(STARTS, ENDS, created_at)
        if due <= now and still_matters(offset, STARTS, ENDS, now)
    ]


def test_the_offsets_in_due_time_order() -> None:
    assert list(OFFSETS) == ["J-7", "J-2", "H-1", "open", "end"]
    assert [due_at(offset, STARTS, ENDS) for offset in OFFSETS] == [
        datetime(2027, 5, 13, 14, 0, tzinfo=UTC),
        datetime(2027, 5, 18, 14, 0, tzinfo=UTC),
        datetime(2027, 5, 20, 13, 0, tzinfo=UTC),
        datetime(2027, 5, 20, 13, 45, tzinfo=UTC),
        datetime(2027, 5, 20, 15, 30, tzinfo=UTC),
    ]


def test_due_times_are_exact_hours_in_utc_across_a_clock_change() -> None:
    paris = ZoneInfo("Europe/Paris")
    starts = datetime(2027, 4, 1, 14, 0, tzinfo=paris)  # summer time; 7 days earlier was winter time
    due = due_at("J-7", starts, starts + timedelta(hours=1))
    assert due == datetime(2027, 3, 25, 12, 0, tzinfo=UTC)
    assert due.tzinfo is UTC
    assert starts - due == timedelta(hours=168)


def test_a_session_created_well_ahead_gets_every_offset_at_its_time() -> None:
    planned = plan(STARTS, ENDS, created_at=STARTS - timedelta(days=30))
    assert planned == [(offset, due_at(offset, STARTS, ENDS)) for offset in OFFSETS]
    assert all(isinstance(step, Planned) for step in planned)


def test_a_session_created_the_day_before_sends_its_links_at_once() -> None:
    created_at = STARTS - timedelta(days=1)
    planned = dict(plan(STARTS, ENDS, created_at))
    assert list(planned) == ["J-2", "H-1", "open", "end"]
    assert planned["J-2"] == due_at("J-2", STARTS, ENDS) < created_at  # due in the past, so sent at once
    assert caught_up(created_at, created_at) == ["J-2"]


def test_a_session_created_three_days_before_has_no_late_week_reminder() -> None:
    # J-7 would still matter (J-2 is a day away), but a reminder due before the session existed is dropped.
    assert names(plan(STARTS, ENDS, STARTS - timedelta(days=3))) == ["J-2", "H-1", "open", "end"]


def test_a_session_created_30_minutes_before_gets_its_links_the_room_and_the_end() -> None:
    created_at = STARTS - timedelta(minutes=30)
    assert names(plan(STARTS, ENDS, created_at)) == ["J-2", "open", "end"]
    assert caught_up(created_at, created_at) == ["J-2"]
    assert caught_up(STARTS - timedelta(minutes=15), created_at) == ["J-2", "open"]


def test_a_session_created_after_its_start_still_opens_and_ends() -> None:
    assert names(plan(STARTS, ENDS, STARTS + timedelta(minutes=5))) == ["open", "end"]


def test_a_reminder_due_at_the_creation_instant_is_kept() -> None:
    assert names(plan(STARTS, ENDS, due_at("H-1", STARTS, ENDS))) == ["J-2", "H-1", "open", "end"]
    assert names(plan(STARTS, ENDS, due_at("H-1", STARTS, ENDS) + SECOND)) == ["J-2", "open", "end"]


@pytest.mark.parametrize(
    ("offset", "until"),
    [
        ("J-7", due_at("J-2", STARTS, ENDS)),
        ("J-2", STARTS),
        ("H-1", STARTS),
        ("open", ENDS),
    ],
)
def test_each_offset_matters_until_its_moment(offset: Offset, until: datetime) -> None:
    assert still_matters(offset, STARTS, ENDS, due_at(offset, STARTS, ENDS))
    assert still_matters(offset, STARTS, ENDS, until - SECOND)
    assert not still_matters(offset, STARTS, ENDS, until)
    assert not still_matters(offset, STARTS, ENDS, until + timedelta(days=1))


def test_the_end_always_matters() -> None:
    for now in (STARTS - timedelta(days=30), ENDS, ENDS + timedelta(days=365)):
        assert still_matters("end", STARTS, ENDS, now)


def test_after_an_outage_spanning_h_1_the_reminder_goes_if_the_start_is_still_ahead() -> None:
    created_at = STARTS - timedelta(days=30)
    h_1 = due_at("H-1", STARTS, ENDS)
    # 6 hours down, back 30 minutes before the start: the late reminder still helps, and goes.
    back = h_1 + timedelta(minutes=30)
    assert back - timedelta(hours=6) < h_1 < back
    assert "H-1" in caught_up(back, created_at)
    # 6 hours down, back after the start: the reminder is stale; the room still opens for the session under way.
    back = STARTS + timedelta(minutes=10)
    assert back - timedelta(hours=6) < h_1 < back
    assert caught_up(back, created_at) == ["open"]


def test_a_week_reminder_is_stale_once_the_links_are_due() -> None:
    created_at = STARTS - timedelta(days=30)
    assert caught_up(due_at("J-2", STARTS, ENDS) - SECOND, created_at) == ["J-7"]
    assert caught_up(due_at("J-2", STARTS, ENDS), created_at) == ["J-2"]


def test_a_scheduler_back_after_the_end_sends_only_the_end() -> None:
    assert caught_up(ENDS + timedelta(hours=2), STARTS - timedelta(days=30)) == ["end"]


def test_wrong_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown offset"):
        due_at("J-1", STARTS, ENDS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown offset"):
        still_matters("J-1", STARTS, ENDS, STARTS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        plan(STARTS, ENDS, datetime(2027, 5, 1, 9, 0))
    with pytest.raises(ValueError, match="ends after it starts"):
        plan(STARTS, STARTS, STARTS - timedelta(days=30))
