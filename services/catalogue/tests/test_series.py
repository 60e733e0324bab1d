"""Recurring sessions (catalogue.series): rules, their RRULE text, and their expansion in local wall time."""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.local_time import NonexistentLocalTime, UnknownTimeZone, exists, to_local, to_utc
from catalogue.series import MAX_OCCURRENCES, WEEKDAYS, Recurrence, SeriesError, from_rrule, occurrences, to_rrule

PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_weekly_14h_stays_14h_in_paris_across_both_clock_changes() -> None:
    # The last Sundays of March and October 2027 are the 28th and the 31st.
    weekly = Recurrence("weekly", weekdays=("TU",), until=date(2027, 11, 9))
    starts = occurrences(weekly, datetime(2027, 3, 16, 14, 0), PARIS)
    assert starts[:3] == [utc(2027, 3, 16, 13, 0), utc(2027, 3, 23, 13, 0), utc(2027, 3, 30, 12, 0)]
    assert starts[-3:] == [utc(2027, 10, 26, 12, 0), utc(2027, 11, 2, 13, 0), utc(2027, 11, 9, 13, 0)]
    assert len(starts) == 35
    for start in starts:
        shown = to_local(start, PARIS)
        assert (shown.weekday(), shown.time()) == (calendar.TUESDAY, time(14, 0))
        summer = date(2027, 3, 28) < shown.date() < date(2027, 10, 31)
        assert start.hour == (12 if summer else 13)


def test_weekly_on_several_days_every_other_week() -> None:
    rule = Recurrence("weekly", interval=2, weekdays=("TH", "TU"), count=5)
    assert rule.weekdays == ("TU", "TH")
    starts = occurrences(rule, datetime(2027, 1, 5, 9, 30), PARIS)
    assert [to_local(s, PARIS).date() for s in starts] == [
        date(2027, 1, 5),
        date(2027, 1, 7),
        date(2027, 1, 19),
        date(2027, 1, 21),
        date(2027, 2, 2),
    ]


def test_monthly_on_the_second_wednesday() -> None:
    rule = Recurrence("monthly", weekdays=("WE",), monthly_position=2, count=4)
    starts = occurrences(rule, datetime(2027, 1, 13, 10, 0), PARIS)
    assert starts == [utc(2027, 1, 13, 9, 0), utc(2027, 2, 10, 9, 0), utc(2027, 3, 10, 9, 0), utc(2027, 4, 14, 8, 0)]


def test_monthly_on_the_last_friday() -> None:
    rule = Recurrence("monthly", weekdays=("FR",), monthly_position=-1, count=4)
    starts = occurrences(rule, datetime(2027, 1, 29, 16, 0), PARIS)
    assert [to_local(s, PARIS).date() for s in starts] == [
        date(2027, 1, 29),
        date(2027, 2, 26),
        date(2027, 3, 26),
        date(2027, 4, 30),
    ]


def test_monthly_on_the_31st_skips_the_shorter_months() -> None:
    starts = occurrences(Recurrence("monthly", count=4), datetime(2027, 1, 31, 10, 0), PARIS)
    assert [to_local(s, PARIS).date() for s in starts] == [
        date(2027, 1, 31),
        date(2027, 3, 31),
        date(2027, 5, 31),
        date(2027, 7, 31),
    ]


def test_a_first_start_off_the_rule_starts_the_series_at_the_next_match() -> None:
    rule = Recurrence("monthly", weekdays=("WE",), monthly_position=2, count=2)
    starts = occurrences(rule, datetime(2027, 1, 1, 10, 0), PARIS)  # a Friday
    assert [to_local(s, PARIS).date() for s in starts] == [date(2027, 1, 13), date(2027, 2, 10)]


def test_daily_every_other_day_until_an_inclusive_date() -> None:
    rule = Recurrence("daily", interval=2, until=date(2027, 3, 9))
    starts = occurrences(rule, datetime(2027, 3, 1, 18, 0), PARIS)
    assert [to_local(s, PARIS).day for s in starts] == [1, 3, 5, 7, 9]


def test_count_is_the_number_of_sessions_and_limit_cuts_the_list() -> None:
    rule = Recurrence("daily", count=10)
    assert len(occurrences(rule, datetime(2027, 3, 1, 18, 0), PARIS)) == 10
    assert occurrences(rule, datetime(2027, 3, 1, 18, 0), PARIS, limit=3) == [
        utc(2027, 3, 1, 17, 0),
        utc(2027, 3, 2, 17, 0),
        utc(2027, 3, 3, 17, 0),
    ]
    with pytest.raises(ValueError, match="limit"):
        occurrences(rule, datetime(2027, 3, 1, 18, 0), PARIS, limit=0)


def test_a_series_has_at_most_500_sessions() -> None:
    assert len(occurrences(Recurrence("daily", count=500), datetime(2027, 1, 1, 9, 0), PARIS)) == 500
    with pytest.raises(SeriesError) as refused:
        occurrences(Recurrence("daily", until=date(2029, 1, 1)), datetime(2027, 1, 1, 9, 0), PARIS)
    assert refused.value.code == "too_many_occurrences"


def test_a_series_ending_before_its_first_start_is_refused() -> None:
    with pytest.raises(SeriesError) as refused:
        occurrences(Recurrence("daily", until=date(2027, 2, 28)), datetime(2027, 3, 1, 9, 0), PARIS)
    assert refused.value.code == "no_occurrence"


def test_an_occurrence_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    starts = occurrences(Recurrence("weekly", weekdays=("SU",), count=3), datetime(2027, 3, 21, 2, 30), PARIS)
    assert starts == [utc(2027, 3, 21, 1, 30), utc(2027, 3, 28, 1, 30), utc(2027, 4, 4, 0, 30)]
    assert [to_local(s, PARIS).time() for s in starts] == [time(2, 30), time(3, 30), time(2, 30)]


def test_an_occurrence_in_the_autumn_fold_is_the_first_of_the_two() -> None:
    starts = occurrences(Recurrence("weekly", weekdays=("SU",), count=3), datetime(2027, 10, 24, 2, 30), PARIS)
    assert starts == [utc(2027, 10, 24, 0, 30), utc(2027, 10, 31, 0, 30), utc(2027, 11, 7, 1, 30)]


def test_a_first_start_that_does_not_exist_is_refused() -> None:
    with pytest.raises(NonexistentLocalTime):
        occurrences(Recurrence("daily", count=3), datetime(2027, 3, 28, 2, 30), PARIS)


def test_the_first_start_is_naive_local_time_in_a_known_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        occurrences(Recurrence("daily", count=3), utc(2027, 3, 1, 9, 0), PARIS)
    with pytest.raises(UnknownTimeZone):
        occurrences(Recurrence("daily", count=3), datetime(2027, 3, 1, 9, 0), "Paris")


@pytest.mark.parametrize(
    ("recurrence", "text"),
    [
        (Recurrence("weekly", weekdays=("TU", "TH"), count=10), "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH;COUNT=10"),
        (Recurrence("daily", interval=2, until=date(2027, 3, 9)), "FREQ=DAILY;INTERVAL=2;UNTIL=20270309T235959"),
        (
            Recurrence("monthly", weekdays=("WE",), monthly_position=2, count=6),
            "FREQ=MONTHLY;INTERVAL=1;BYDAY=2WE;COUNT=6",
        ),
        (
            Recurrence("monthly", interval=3, weekdays=("FR",), monthly_position=-1, until=date(2028, 6, 30)),
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR;UNTIL=20280630T235959",
        ),
        (Recurrence("monthly", count=12), "FREQ=MONTHLY;INTERVAL=1;COUNT=12"),
    ],
)
def test_rrule_text_round_trip(recurrence: Recurrence, text: str) -> None:
    assert to_rrule(recurrence) == text
    assert from_rrule(text) == recurrence


def test_rrule_text_is_read_leniently_where_rfc_5545_allows() -> None:
    expected = Recurrence("weekly", weekdays=("MO", "FR"), until=date(2027, 6, 30))
    assert from_rrule("RRULE:freq=weekly;byday=FR,MO;until=20270630") == expected
    assert from_rrule("FREQ=MONTHLY;BYDAY=+1MO;COUNT=2") == Recurrence(
        "monthly", weekdays=("MO",), monthly_position=1, count=2
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "unsupported_rrule"),
        ("FREQ=YEARLY;COUNT=2", "unsupported_rrule"),
        ("FREQ=HOURLY;COUNT=2", "unsupported_rrule"),
        ("COUNT=2", "unsupported_rrule"),
        ("FREQ=WEEKLY;BYDAY=TU;BYMONTH=1;COUNT=2", "unsupported_rrule"),
        ("FREQ=MONTHLY;BYDAY=WE;BYSETPOS=2;COUNT=2", "unsupported_rrule"),
        ("FREQ=WEEKLY;BYDAY=TU;WKST=SU;COUNT=2", "unsupported_rrule"),
        ("FREQ=WEEKLY;FREQ=DAILY;COUNT=2", "unsupported_rrule"),
        ("FREQ=WEEKLY;BYDAY=TU;COUNT=2;", "unsupported_rrule"),
        ("FREQ=WEEKLY;BYDAY=TUESDAY;COUNT=2", "unsupported_rrule"),
        ("FREQ=MONTHLY;BYDAY=1MO,3MO;COUNT=2", "unsupported_rrule"),
        ("FREQ=DAILY;COUNT=-1", "unsupported_rrule"),
        ("FREQ=DAILY;COUNT=١٢", "unsupported_rrule"),
        ("FREQ=DAILY;UNTIL=20271231T120000Z", "unsupported_rrule"),
        ("FREQ=DAILY;UNTIL=20270231", "unsupported_rrule"),
        ("FREQ=DAILY;" + "X" * 500, "unsupported_rrule"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20271231", "count_or_until"),
        ("FREQ=DAILY", "count_or_until"),
        ("FREQ=DAILY;COUNT=501", "invalid_count"),
        ("FREQ=DAILY;INTERVAL=0;COUNT=2", "invalid_interval"),
        ("FREQ=WEEKLY;COUNT=2", "invalid_weekdays"),
        ("FREQ=WEEKLY;BYDAY=2TU;COUNT=2", "invalid_monthly_position"),
        ("FREQ=MONTHLY;BYDAY=5MO;COUNT=2", "invalid_monthly_position"),
        ("FREQ=MONTHLY;BYDAY=MO;COUNT=2", "invalid_weekdays"),
    ],
)
def test_rrule_text_beyond_what_is_supported_is_refused(text: str, code: str) -> None:
    with pytest.raises(SeriesError) as refused:
        from_rrule(text)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"frequency": "yearly", "count": 2}, "invalid_frequency"),
        ({"frequency": "daily", "interval": 0, "count": 2}, "invalid_interval"),
        ({"frequency": "daily", "interval": 100, "count": 2}, "invalid_interval"),
        ({"frequency": "daily", "interval": True, "count": 2}, "invalid_interval"),
        ({"frequency": "daily", "interval": 1.5, "count": 2}, "invalid_interval"),
        ({"frequency": "daily", "weekdays": ("MO",), "count": 2}, "invalid_weekdays"),
        ({"frequency": "weekly", "count": 2}, "invalid_weekdays"),
        ({"frequency": "weekly", "weekdays": ("TU", "TU"), "count": 2}, "invalid_weekdays"),
        ({"frequency": "weekly", "weekdays": ("TUE",), "count": 2}, "invalid_weekdays"),
        ({"frequency": "weekly", "weekdays": ("TU",), "monthly_position": 1, "count": 2}, "invalid_monthly_position"),
        ({"frequency": "monthly", "weekdays": ("TU",), "count": 2}, "invalid_weekdays"),
        ({"frequency": "monthly", "weekdays": ("TU", "WE"), "monthly_position": 1, "count": 2}, "invalid_weekdays"),
        ({"frequency": "monthly", "monthly_position": 1, "count": 2}, "invalid_weekdays"),
        ({"frequency": "monthly", "weekdays": ("TU",), "monthly_position": 5, "count": 2}, "invalid_monthly_position"),
        ({"frequency": "monthly", "weekdays": ("TU",), "monthly_position": 0, "count": 2}, "invalid_monthly_position"),
        ({"frequency": "monthly", "weekdays": ("TU",), "monthly_position": -2, "count": 2}, "invalid_monthly_position"),
        ({"frequency": "daily"}, "count_or_until"),
        ({"frequency": "daily", "count": 2, "until": date(2027, 1, 1)}, "count_or_until"),
        ({"frequency": "daily", "count": 0}, "invalid_count"),
        ({"frequency": "daily", "count": 501}, "invalid_count"),
        ({"frequency": "daily", "until": datetime(2027, 1, 1, 12, 0)}, "invalid_until"),
        ({"frequency": "daily", "until": "2027-01-01"}, "invalid_until"),
    ],
)
def test_invalid_recurrences_are_refused_with_their_code(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(SeriesError) as refused:
        Recurrence(**fields)
    assert refused.value.code == code
    assert isinstance(refused.value, ValueError)


# The property: a series expanded anywhere keeps the first start's wall-clock time on exactly the days its rule
# names, except an occurrence in a spring-forward gap, moved forward by the gap.

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago", "UTC"]
days = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(tuple)
ends = st.one_of(
    st.fixed_dictionaries({"count": st.integers(1, 30)}),
    st.fixed_dictionaries({"until": st.dates(date(2026, 1, 1), date(2029, 12, 31))}),
)
recurrences = st.one_of(
    st.builds(lambda i, e: Recurrence("daily", interval=i, **e), st.integers(1, 10), ends),
    st.builds(lambda i, d, e: Recurrence("weekly", interval=i, weekdays=d, **e), st.integers(1, 4), days, ends),
    st.builds(lambda i, e: Recurrence("monthly", interval=i, **e), st.integers(1, 4), ends),
    st.builds(
        lambda i, d, p, e: Recurrence("monthly", interval=i, weekdays=(d,), monthly_position=p, **e),
        st.integers(1, 4),
        st.sampled_from(WEEKDAYS),
        st.sampled_from([1, 2, 3, 4, -1]),
        ends,
    ),
)

# A spring-forward day of each zone (its gap's hours): series starting in the weeks before cross it.
SPRING_FORWARD = {
    "Europe/Paris": date(2027, 3, 28),  # 02:00 -> 03:00
    "America/New_York": date(2027, 3, 14),  # 02:00 -> 03:00
    "Australia/Sydney": date(2027, 10, 3),  # 02:00 -> 03:00
    "Australia/Lord_Howe": date(2027, 10, 3),  # 02:00 -> 02:30
    "America/Santiago": date(2027, 9, 5),  # 00:00 -> 01:00
}
# Hours in and around the gaps, 2 o'clock (the usual gap) the most often.
times = st.builds(time, st.sampled_from([2, 0, 2, 1, 2, 3, 14, 23]), st.sampled_from([0, 15, 30, 45]))
anywhere = st.tuples(st.sampled_from(ZONES), st.dates(date(2026, 1, 1), date(2028, 12, 31)))
before_a_gap = st.sampled_from(sorted(SPRING_FORWARD.items())).flatmap(
    lambda change: st.tuples(st.just(change[0]), st.integers(0, 21).map(lambda n: change[1] - timedelta(days=n)))
)
zones_and_first_days = st.one_of(anywhere, before_a_gap)


def on_rule(rule: Recurrence, first: date, day: date) -> bool:
    """Whether the rule names `day`, for a series whose first start is on `first` (an independent oracle)."""
    months_apart = (day.year - first.year) * 12 + day.month - first.month
    if rule.frequency == "daily":
        return (day - first).days % rule.interval == 0
    if rule.frequency == "weekly":
        week_start = first - timedelta(days=first.weekday())
        return ((day - week_start).days // 7) % rule.interval == 0 and WEEKDAYS[day.weekday()] in rule.weekdays
    if months_apart % rule.interval:
        return False
    if rule.monthly_position is None:
        return day.day == first.day
    if WEEKDAYS[day.weekday()] != rule.weekdays[0]:
        return False
    if rule.monthly_position == -1:
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 + 1 == rule.monthly_position


def rule_days(rule: Recurrence, first: date) -> list[date]:
    """The days the rule names from `first` on, up to its end (and one past the 500 a series may have)."""
    found: list[date] = []
    day = first
    while len(found) <= MAX_OCCURRENCES and (day <= rule.until if rule.until else len(found) < (rule.count or 0)):
        if on_rule(rule, first, day):
            found.append(day)
        day += timedelta(days=1)
    return found


@settings(max_examples=150, deadline=None)
@given(rule=recurrences, zone_and_day=zones_and_first_days, at=times)
def test_every_occurrence_keeps_the_first_wall_time_on_the_rule_days(
    rule: Recurrence, zone_and_day: tuple[str, date], at: time
) -> None:
    tz, first = zone_and_day[0], datetime.combine(zone_and_day[1], at)
    if not exists(first, tz):
        with pytest.raises(NonexistentLocalTime):
            occurrences(rule, first, tz)
        return
    expected = rule_days(rule, first.date())
    if not expected or len(expected) > MAX_OCCURRENCES:
        with pytest.raises(SeriesError) as refused:
            occurrences(rule, first, tz)
        assert refused.value.code == ("no_occurrence" if not expected else "too_many_occurrences")
        return

    starts = occurrences(rule, first, tz)
    assert starts == sorted(set(starts))
    walls = [to_local(start, tz).replace(tzinfo=None) for start in starts]
    planned = [datetime.combine(wall.date(), first.time()) for wall in walls]
    assert [wall.date() for wall in planned] == expected  # exactly the rule's days: none skipped, none added
    for start, wall, planned_wall in zip(starts, walls, planned, strict=True):
        if wall != planned_wall:  # the documented gap shift, and nothing else
            assert not exists(planned_wall, tz)
            assert wall > planned_wall
            assert to_utc(planned_wall, tz, shift_gap=True) == start
    if on_rule(rule, first.date(), first.date()):
        assert starts[0] == to_utc(first, tz)


@pytest.mark.parametrize(("tz", "day"), SPRING_FORWARD.items())
def test_the_spring_forward_days_have_their_gap(tz: str, day: date) -> None:
    assert any(not exists(datetime.combine(day, time(hour, 15)), tz) for hour in (0, 2))
