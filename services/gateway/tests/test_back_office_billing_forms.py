"""What the billing back-office reads from its forms (euros and percent as organisers type them, in either
language) and the revenue chart it draws; the gateway alone, nothing reaches billing."""

import pytest

from gateway import i18n
from gateway.back_office_billing import PriceItemForm, cents_of, checked_item, rate_bp_of, revenue_chart


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("60,00", 6000),
        ("60", 6000),
        ("60.5", 6050),
        ("1 234,56", 123456),
        ("1\u202f234,56 €", 123456),
        ("0,07", 7),
        ("", None),
        ("-5", None),
        ("60,005", None),
        ("1.234,56", None),
        ("soixante", None),
        ("99999999,99", None),
    ],
)
def test_euros_as_typed(typed: str, cents: int | None) -> None:
    assert cents_of(typed) == cents


@pytest.mark.parametrize(
    ("typed", "rate_bp"),
    [("20", 2000), ("5,5", 550), ("2.1 %", 210), ("0", 0), ("100", 10000), ("100,01", None), ("vingt", None)],
)
def test_vat_rates_as_typed(typed: str, rate_bp: int | None) -> None:
    assert rate_bp_of(typed) == rate_bp


def test_a_price_item_form_becomes_billings_body_or_its_problems() -> None:
    form = PriceItemForm(
        code="pack-20",
        label_fr="Forfait 20 jetons + 6 offerts",
        label_en="Bundle of 20 tokens + 6 free",
        tokens="20",
        bonus_tokens="6",
        net="1 100,00",
        vat_rate="20",
        validity="school_year",
        purchase_order_allowed="",
        active="on",
        position="4",
    )
    body, errors = checked_item(form)
    assert errors == {}
    assert body == {
        "code": "pack-20",
        "label_fr": "Forfait 20 jetons + 6 offerts",
        "label_en": "Bundle of 20 tokens + 6 free",
        "tokens": 20,
        "bonus_tokens": 6,
        "net_cents": 110000,
        "vat_rate_bp": 2000,
        "validity": "school_year",
        "purchase_order_allowed": False,
        "active": True,
        "position": 4,
    }
    wrong = form.model_copy(update={"code": "Pack 20", "tokens": "0", "net": "abc", "vat_rate": "", "validity": "x"})
    assert set(checked_item(wrong)[1]) == {"code", "tokens", "net", "vat_rate", "validity"}


def test_an_item_is_shown_in_its_form_as_the_organiser_types_it_in_their_language() -> None:
    item = {
        "code": "unit",
        "label_fr": "Jeton",
        "label_en": "Token",
        "tokens": 1,
        "bonus_tokens": 0,
        "price": {"net": {"amount_cents": 6000}, "vat_rate_bp": 550},
        "validity": "24_months",
        "purchase_order_allowed": True,
        "active": True,
        "position": 1,
    }
    token = i18n.current_language.set("fr")
    try:
        assert (PriceItemForm.of(item).net, PriceItemForm.of(item).vat_rate) == ("60,00", "5,5")
        i18n.current_language.set("en")
        assert (PriceItemForm.of(item).net, PriceItemForm.of(item).vat_rate) == ("60.00", "5.5")
    finally:
        i18n.current_language.reset(token)
    assert checked_item(PriceItemForm.of(item))[1] == {}


def test_the_revenue_chart_has_a_bar_per_month_scaled_to_the_largest_and_credit_notes_below_the_line() -> None:
    months = [{"net_cents": 0} for _ in range(12)]
    months[2]["net_cents"], months[5]["net_cents"], months[7]["net_cents"] = 60000, 30000, -15000
    chart = revenue_chart(2026, months)
    assert len(chart.bars) == 12
    march, june, august = chart.bars[2], chart.bars[5], chart.bars[7]
    assert march.height == pytest.approx(2 * june.height) and march.y < june.y < chart.baseline
    assert august.negative and august.y == chart.baseline and august.height == pytest.approx(june.height / 2)
    assert all(bar.height == 0 for index, bar in enumerate(chart.bars) if index not in (2, 5, 7))
    flat = revenue_chart(2026, [{"net_cents": 0}] * 12)
    assert all(bar.y == flat.baseline for bar in flat.bars) and flat.baseline > chart.bars[2].y
