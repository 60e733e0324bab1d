"""The gateway's own parts of buying tokens, without a service behind them: the buyer drawn from an institution's
profile, the cart's total (VAT as billing computes it) and the quantities read from the cart's form."""

from gateway.billing import DOCUMENT_KEY, buyer_of
from gateway.billing_pages import cart_of, quantities_from


def item(item_id: str, net_cents: int, tokens: int = 1, bonus: int = 0, rate_bp: int = 2000) -> dict:
    vat = (net_cents * rate_bp + 5_000) // 10_000
    return {
        "id": item_id,
        "tokens": tokens,
        "bonus_tokens": bonus,
        "price": {
            "net": {"amount_cents": net_cents, "currency": "EUR"},
            "vat": {"amount_cents": vat, "currency": "EUR"},
            "gross": {"amount_cents": net_cents + vat, "currency": "EUR"},
            "vat_rate_bp": rate_bp,
        },
    }


def test_a_school_is_a_public_buyer_billed_at_its_billing_address() -> None:
    profile = {"name": "Lycée Hugo", "kind": "school", "identifier": "0750652B", "postal_address": "1 rue A",
               "billing_address": "Intendance\n2 rue B", "vat_number": None, "city": "Paris"}  # fmt: skip
    assert buyer_of(profile) == {
        "institution_name": "Lycée Hugo",
        "kind": "school",
        "identifier": "0750652B",
        "siret": None,
        "vat_number": None,
        "address": "Intendance\n2 rue B",
        "public_buyer": True,
    }


def test_a_company_is_billed_with_its_siret_and_vat_number() -> None:
    profile = {"name": "Acme", "kind": "company", "identifier": "73282932000074", "postal_address": "3 rue C",
               "billing_address": None, "vat_number": "FR44732829320", "city": "Lyon"}  # fmt: skip
    buyer = buyer_of(profile)
    assert (buyer["siret"], buyer["vat_number"], buyer["address"], buyer["public_buyer"]) == (
        "73282932000074",
        "FR44732829320",
        "3 rue C",
        False,
    )


def test_the_cart_adds_the_lines_and_computes_the_vat_on_the_net() -> None:
    unit, bundle = item("u", 6000), item("b", 30000, tokens=5, bonus=1)
    cart = cart_of([unit, bundle], {"u": 3, "b": 2})
    assert (cart["net_cents"], cart["vat_cents"], cart["gross_cents"], cart["tokens"]) == (78000, 15600, 93600, 15)
    odd = cart_of([item("x", 333)], {"x": 3})  # 9.99 HT: the VAT of the total, rounded half up once
    assert (odd["net_cents"], odd["vat_cents"]) == (999, 200)
    assert cart_of([unit], {})["lines"] == []


def test_quantities_are_whole_numbers_from_0_to_100_and_an_empty_field_is_0() -> None:
    items = [item("a", 6000), item("b", 6000), item("c", 6000), item("d", 6000)]
    form = {"quantity-a": " 2 ", "quantity-b": "", "quantity-c": "101", "quantity-d": "²"}
    quantities, typed, errors = quantities_from(form, items)
    assert quantities == {"a": 2}
    assert typed["quantity-c"] == "101" and set(errors) == {"quantity-c", "quantity-d"}


def test_a_document_is_asked_for_by_its_id_or_number_only() -> None:
    assert DOCUMENT_KEY.fullmatch("F2026-000123") and DOCUMENT_KEY.fullmatch("0b5c6f1e-0c1d-4b43-9d55-2f1ad1d3a7c1")
    assert not DOCUMENT_KEY.fullmatch("../wallet") and not DOCUMENT_KEY.fullmatch("F2026 1")
