"""Local wall times and UTC instants (catalogue.local_time): zones, the spring-forward gap, the fall-back fold."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.local_time import (
    NonexistentLocalTime,
    UnknownTimeZone,
    exists,
    to_local,
    to_utc,
    zone,
)

PARIS = "Europe/Paris"
ZONES_WITH_CHANGES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Australia/Sydney"]


def test_a_summer_and_a_winter_time_in_paris() -> None:
    assert to_utc(datetime(2027, 7, 1, 14, 0), PARIS) == datetime(2027, 7, 1, 12, 0, tzinfo=UTC)
    assert to_utc(datetime(2027, 1, 12, 14, 0), PARIS) == datetime(2027, 1, 12, 13, 0, tzinfo=UTC)


def test_to_local_gives_the_wall_time_in_the_zone() -> None:
    shown = to_local(datetime(2027, 7, 1, 12, 0, tzinfo=UTC), PARIS)
    assert shown.replace(tzinfo=None) == datetime(2027, 7, 1, 14, 0)
    assert shown.utcoffset() == timedelta(hours=2)
    assert str(shown.tzinfo) == PARIS


@pytest.mark.parametrize(
    "name", ["Europe/Paris", "America/Argentina/ComodRivadavia", "Etc/GMT+5", "UTC", "Pacific/Apia"]
)
def test_iana_zones_are_known(name: str) -> None:
    assert str(zone(name)) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "Europe/Lyon",
        "europe/paris",
        "Europe",
        "America",
        "Europe/Paris/",
        "/etc/passwd",
        "../../../etc/passwd",
        "Europe/../../etc/passwd",
        "localtime",
        "posixrules",
        "right/UTC",
        "Europe/Paris\x00",
        "x" * 10_000,
    ],
)
def test_anything_else_is_an_unknown_time_zone(name: str) -> None:
    with pytest.raises(UnknownTimeZone) as refused:
        zone(name)
    assert refused.value.code == "unknown_time_zone"
    assert "is not an IANA time zone" in str(refused.value)
    assert len(str(refused.value)) < 200


def test_an_unknown_zone_is_refused_by_every_conversion() -> None:
    with pytest.raises(UnknownTimeZone):
        to_utc(datetime(2027, 1, 1, 14, 0), "Mars/Olympus_Mons")
    with pytest.raises(UnknownTimeZone):
        to_local(datetime(2027, 1, 1, 14, 0, tzinfo=UTC), "Mars/Olympus_Mons")


def test_a_time_in_the_spring_forward_gap_does_not_exist() -> None:
    with pytest.raises(NonexistentLocalTime) as refused:
        to_utc(datetime(2027, 3, 28, 2, 30), PARIS)
    error = refused.value
    assert isinstance(error, ValueError)
    assert error.code == "nonexistent_local_time"
    assert str(error) == "02:30 does not exist on 28 March 2027 in Europe/Paris: clocks go from 02:00 to 03:00"
    assert (error.gap_start, error.gap_end) == (datetime(2027, 3, 28, 2, 0), datetime(2027, 3, 28, 3, 0))


@pytest.mark.parametrize("fold", [0, 1])
def test_the_gap_is_refused_whatever_the_fold(fold: int) -> None:
    with pytest.raises(NonexistentLocalTime):
        to_utc(datetime(2027, 3, 28, 2, 0), PARIS, fold=fold)
    assert not exists(datetime(2027, 3, 28, 2, 59, 59), PARIS)


def test_the_gap_edges_exist() -> None:
    assert to_utc(datetime(2027, 3, 28, 1, 59, 59), PARIS) == datetime(2027, 3, 28, 0, 59, 59, tzinfo=UTC)
    assert to_utc(datetime(2027, 3, 28, 3, 0), PARIS) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_gaps_of_other_lengths_and_places_are_named() -> None:
    with pytest.raises(NonexistentLocalTime, match="clocks go from 02:00 to 02:30"):
        to_utc(datetime(2027, 10, 3, 2, 15), "Australia/Lord_Howe")
    with pytest.raises(NonexistentLocalTime, match="clocks go from 00:00 to 01:00"):
        to_utc(datetime(2027, 9, 5, 0, 30), "America/Santiago")
    # Samoa skipped a whole day when it crossed the date line.
    with pytest.raises(NonexistentLocalTime) as refused:
        to_utc(datetime(2011, 12, 30, 10, 0), "Pacific/Apia")
    assert str(refused.value).endswith("clocks go from 00:00 on 30 December 2011 to 00:00 on 31 December 2011")


@pytest.mark.parametrize("fold", [0, 1])
def test_shift_gap_moves_a_nonexistent_time_forward_by_the_gap(fold: int) -> None:
    shifted = to_utc(datetime(2027, 3, 28, 2, 30), PARIS, fold=fold, shift_gap=True)
    assert shifted == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert to_local(shifted, PARIS).replace(tzinfo=None) == datetime(2027, 3, 28, 3, 30)


def test_shift_gap_leaves_existing_times_alone() -> None:
    assert to_utc(datetime(2027, 3, 28, 14, 0), PARIS, shift_gap=True) == datetime(2027, 3, 28, 12, 0, tzinfo=UTC)


def test_a_time_that_happens_twice_is_the_first_one_unless_fold_1() -> None:
    ambiguous = datetime(2027, 10, 31, 2, 30)
    assert exists(ambiguous, PARIS)
    assert to_utc(ambiguous, PARIS) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # summer time, UTC+2
    assert to_utc(ambiguous, PARIS, fold=1) == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)  # winter time, UTC+1
    for instant in (to_utc(ambiguous, PARIS), to_utc(ambiguous, PARIS, fold=1)):
        assert to_local(instant, PARIS).replace(tzinfo=None) == ambiguous


def test_naive_and_aware_are_not_mixed_up() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_utc(datetime(2027, 1, 1, 14, 0, tzinfo=UTC), PARIS)
    with pytest.raises(ValueError, match="aware"):
        to_local(datetime(2027, 1, 1, 14, 0), PARIS)
    with pytest.raises(ValueError, match="fold"):
        to_utc(datetime(2027, 1, 1, 14, 0), PARIS, fold=2)


@settings(max_examples=300, deadline=None)
@given(
    tz=st.sampled_from(ZONES_WITH_CHANGES),
    instant=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
)
def test_every_instant_comes_back_from_its_wall_time_and_fold(tz: str, instant: datetime) -> None:
    shown = to_local(instant, tz)
    wall = shown.replace(tzinfo=None)
    assert exists(wall, tz)
    assert to_utc(wall, tz, fold=shown.fold) == instant


@settings(max_examples=300, deadline=None)
@given(
    tz=st.sampled_from(ZONES_WITH_CHANGES),
    # Minutes near the changes' usual hours, so that gaps and folds come up often.
    wall=st.builds(
        datetime,
        year=st.integers(2020, 2035),
        month=st.sampled_from([3, 4, 9, 10, 11]),
        day=st.integers(1, 28),
        hour=st.sampled_from([0, 1, 2, 3, 23]),
        minute=st.integers(0, 59),
    ),
)
def test_existence_agrees_with_the_round_trip_for_both_folds(tz: str, wall: datetime) -> None:
    where = zone(tz)
    comes_back = [
        wall.replace(tzinfo=where, fold=fold).astimezone(UTC).astimezone(where).replace(tzinfo=None) == wall
        for fold in (0, 1)
    ]
    assert comes_back[0] == comes_back[1] == exists(wall, tz)
    if exists(wall, tz):
        assert to_local(to_utc(wall, tz), tz).replace(tzinfo=None) == wall
    else:
        with pytest.raises(NonexistentLocalTime) as refused:
            to_utc(wall, tz)
        error = refused.value
        assert error.gap_start <= wall < error.gap_end
        assert exists(error.gap_start - timedelta(seconds=1), tz)
        assert not exists(error.gap_start, tz)
        assert exists(error.gap_end, tz)
        shifted = to_local(to_utc(wall, tz, shift_gap=True), tz).replace(tzinfo=None)
        assert shifted == wall + (error.gap_end - error.gap_start)
