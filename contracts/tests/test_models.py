from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts import Money, VatAmounts
from contracts.events.catalogue import SessionScheduled
from contracts.examples import SESSION_ID, THEME_ID


def test_vat_amounts_add_up() -> None:
    amounts = VatAmounts(
        net=Money(amount_cents=6000), vat=Money(amount_cents=1200), gross=Money(amount_cents=7200), vat_rate_bp=2000
    )
    assert amounts.gross.currency == "EUR"
    with pytest.raises(ValueError, match="gross must equal net \\+ vat"):
        VatAmounts(
            net=Money(amount_cents=6000),
            vat=Money(amount_cents=1200),
            gross=Money(amount_cents=7000),
            vat_rate_bp=2000,
        )
    with pytest.raises(ValueError, match="one currency"):
        VatAmounts(
            net=Money(amount_cents=6000),
            vat=Money(amount_cents=1200),
            gross=Money(amount_cents=7200, currency="USD"),
            vat_rate_bp=2000,
        )
    with pytest.raises(ValueError, match="currency"):
        Money(amount_cents=1, currency="euro")


def session(starts_at: datetime) -> SessionScheduled:
    return SessionScheduled(
        session_id=SESSION_ID,
        theme_id=THEME_ID,
        title="Pronote",
        starts_at=starts_at,
        duration_minutes=60,
        capacity=10,
        provider="jitsi",
    )


def test_times_are_aware_and_stored_in_utc() -> None:
    paris = datetime(2025, 3, 20, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    scheduled = session(paris)
    assert scheduled.starts_at == paris
    assert scheduled.starts_at.tzinfo is UTC
    assert scheduled.timezone == "Europe/Paris"
    assert '"starts_at":"2025-03-20T13:30:00Z"' in scheduled.model_dump_json()
    with pytest.raises(ValueError, match="timezone"):
        session(datetime(2025, 3, 20, 14, 30))


def test_durations_stay_within_a_working_day() -> None:
    assert SessionScheduled.model_validate({**session(datetime.now(UTC)).model_dump(), "duration_minutes": 45})
    for minutes in (0, 14, 481):
        with pytest.raises(ValueError, match="duration_minutes"):
            SessionScheduled.model_validate({**session(datetime.now(UTC)).model_dump(), "duration_minutes": minutes})


def test_capacity_may_be_unlimited_but_never_zero() -> None:
    unlimited = SessionScheduled.model_validate({**session(datetime.now(UTC)).model_dump(), "capacity": None})
    assert unlimited.capacity is None
    with pytest.raises(ValueError, match="capacity"):
        SessionScheduled.model_validate({**session(datetime.now(UTC)).model_dump(), "capacity": 0})
