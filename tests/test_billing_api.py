"""The public API of billing through the real services (docs/api.md, "Tokens, orders and invoices"): a manager buys
a bundle by card on the sandbox provider's page, whose webhook comes back through the gateway's public path; the
order is paid, the tokens credited, the invoice listed and its PDF downloaded. A declined payment leaves no token.
Purchase orders with their signed PDF. Members read and cannot buy; organisers read; anyone else gets 404 on every
route, whatever id or number they try; the webhook takes only what is signed with the provider's secret."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from billing_world import (
    PACK_5,
    PACK_10,
    PDF_BYTES,
    UNIT,
    People,
    answer_checkout,
    card_order,
    make_people,
    order_until,
    paid_order,
    price_items,
    purchase_order,
    stripe_signed,
    unhandled_event,
)

from api_world import sign_up

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def people(system) -> People:
    return await make_people(system, "billing-api")


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def paid(system, people) -> dict:
    """A's bundle of 5 + 1 tokens, paid by card."""
    return await paid_order(system.url("gateway"), people.manager.auth, people.manager.account_id, PACK_5)


def account_path(account_id: str, rest: str = "") -> str:
    return f"/api/v1/accounts/{account_id}{rest}"


async def test_the_price_list_is_public_with_vat_explicit(gateway):
    items = await price_items(gateway)
    unit = items[UNIT]
    assert unit["price"] == {
        "net": {"amount_cents": 6000, "currency": "EUR"},
        "vat": {"amount_cents": 1200, "currency": "EUR"},
        "gross": {"amount_cents": 7200, "currency": "EUR"},
        "vat_rate_bp": 2000,
    }
    assert unit["purchase_order_allowed"] is True
    assert (items[PACK_5]["tokens"], items[PACK_5]["bonus_tokens"]) == (5, 1)
    assert items[PACK_10]["purchase_order_allowed"] is False


async def test_a_bundle_bought_by_card_is_paid_credited_and_invoiced(gateway, system, people):
    manager = people.manager
    order = await card_order(gateway, manager.auth, manager.account_id, PACK_5)
    assert (order["status"], order["payment_method"], order["tokens"]) == ("awaiting_payment", "card", 6)
    assert order["total"]["gross"] == {"amount_cents": 36000, "currency": "EUR"}
    # the buyer is the institution as accounts knows it; a school is a public buyer
    assert order["buyer"]["institution_name"] == "Lycée billing-api-a"
    assert (order["buyer"]["identifier"], order["buyer"]["public_buyer"]) == (manager.uai, True)
    assert urlsplit(order["checkout_url"]).netloc == urlsplit(system.url("gateway")).netloc

    back = await answer_checkout(system.url("gateway"), order, "pay")
    assert back.status_code == 303
    assert urlsplit(back.headers["location"]).path == f"/account/orders/{order['id']}"
    assert urlsplit(back.headers["location"]).query == "paid=1"
    done = await order_until(gateway, manager.auth, manager.account_id, order["id"], "paid")
    assert done["checkout_url"] is None and done["paid_at"]

    wallet = (await gateway.get(account_path(manager.account_id, "/wallet"), headers=manager.auth)).json()
    assert wallet["balance"] == 6
    [lot] = [lot for lot in wallet["lots"] if lot["order_id"] == order["id"]]
    assert (lot["tokens"], lot["remaining"], lot["order_reference"]) == (6, 6, order["reference"])
    assert datetime.fromisoformat(lot["expires_at"]) > datetime.now(UTC) + timedelta(days=700)  # 24 months

    ledger = await gateway.get(account_path(manager.account_id, "/ledger"), headers=manager.auth)
    assert ledger.status_code == 200
    assert [(line["kind"], line["tokens"], line["balance_after"]) for line in ledger.json()["items"]][-1] == (
        "credit",
        6,
        6,
    )
    documents = (await gateway.get(account_path(manager.account_id, "/documents"), headers=manager.auth)).json()
    [invoice] = [d for d in documents["items"] if d["order_id"] == order["id"]]
    assert (invoice["kind"], invoice["number"], invoice["paid"]) == ("invoice", done["invoice"]["number"], True)
    for key in (invoice["id"], invoice["number"]):
        pdf = await gateway.get(account_path(manager.account_id, f"/documents/{key}/pdf"), headers=manager.auth)
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("attachment")
        assert pdf.content.startswith(b"%PDF")

    dashboard = (await gateway.get(account_path(manager.account_id, "/dashboard"), headers=manager.auth)).json()
    assert dashboard["wallet"]["status"] == "ok" and dashboard["wallet"]["balance"] >= 6


async def test_a_declined_payment_leaves_no_token_and_no_invoice(gateway, system):
    buyer = await sign_up(gateway, "billing-declined", verified_with=system.stack.mail_api)
    order = await card_order(gateway, buyer.auth, buyer.account_id, UNIT, 2)
    back = await answer_checkout(system.url("gateway"), order, "decline")
    assert back.status_code == 303
    failed = await order_until(gateway, buyer.auth, buyer.account_id, order["id"], "payment_failed")
    assert failed["invoice"] is None and failed["checkout_url"] is None
    wallet = (await gateway.get(account_path(buyer.account_id, "/wallet"), headers=buyer.auth)).json()
    assert (wallet["balance"], wallet["lots"]) == (0, [])
    documents = (await gateway.get(account_path(buyer.account_id, "/documents"), headers=buyer.auth)).json()
    assert documents["items"] == [] and documents["total"] == 0
    # the sandbox page is gone for a checkout that is no longer awaited; an unknown one never was
    shown = await gateway.get(urlsplit(order["checkout_url"]).path)
    assert shown.status_code == 200 and 'name="action"' not in shown.text
    assert (await gateway.get("/payments/sandbox/cs_sandbox_unknown")).status_code == 404


async def test_an_idempotency_key_replays_the_order(gateway, people):
    manager = people.manager
    item = (await price_items(gateway))[UNIT]
    body = {"lines": [{"item_id": item["id"], "quantity": 1}]}
    headers = {**manager.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = await gateway.post(account_path(manager.account_id, "/orders"), json=body, headers=headers)
    again = await gateway.post(account_path(manager.account_id, "/orders"), json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_a_purchase_order_with_its_signed_pdf(gateway, people):
    manager = people.manager
    order = await purchase_order(gateway, manager.auth, manager.account_id, 3)
    assert (order["status"], order["payment_method"], order["tokens"]) == ("awaiting_validation", "purchase_order", 3)
    assert (order["buyer_order_number"], order["service_code"], order["commitment_number"]) == (
        "BC-2026-017",
        "SERVICE-EPLE",
        "EJ-4471",
    )
    signed = account_path(manager.account_id, f"/orders/{order['id']}/signed-order")
    pdf = {**manager.auth, "Content-Type": "application/pdf"}
    assert (await gateway.put(signed, content=b"not a pdf", headers=pdf)).status_code == 422
    assert (
        await gateway.put(signed, content=PDF_BYTES, headers={**manager.auth, "Content-Type": "text/plain"})
    ).status_code == 415
    stored = await gateway.put(signed, content=PDF_BYTES, headers=pdf)
    assert stored.status_code == 204, stored.text
    again = await gateway.get(account_path(manager.account_id, f"/orders/{order['id']}"), headers=manager.auth)
    assert again.json()["has_signed_order"] is True
    wallet = (await gateway.get(account_path(manager.account_id, "/wallet"), headers=manager.auth)).json()
    assert all(lot["order_id"] != order["id"] for lot in wallet["lots"])  # nothing credited before validation


async def test_purchase_orders_are_refused_for_card_only_items_and_without_a_public_buyers_service_code(
    gateway, people
):
    manager = people.manager
    items = await price_items(gateway)
    path = account_path(manager.account_id, "/purchase-orders")
    bundle = {"lines": [{"item_id": items[PACK_10]["id"], "quantity": 1}], "buyer_order_number": "BC-1"}
    refused = await gateway.post(path, json=bundle | {"service_code": "S"}, headers=manager.auth)
    assert refused.status_code == 409 and refused.json()["code"] == "purchase_order_not_allowed"
    unit = {"lines": [{"item_id": items[UNIT]["id"], "quantity": 1}], "buyer_order_number": "BC-2"}
    refused = await gateway.post(path, json=unit, headers=manager.auth)
    assert refused.status_code == 422 and refused.json()["code"] == "service_code_required"


async def test_a_card_payment_not_made_can_be_abandoned_once(gateway, people):
    manager = people.manager
    order = await card_order(gateway, manager.auth, manager.account_id, UNIT)
    cancel = account_path(manager.account_id, f"/orders/{order['id']}/cancel")
    abandoned = await gateway.post(cancel, headers=manager.auth)
    assert abandoned.status_code == 200 and abandoned.json()["status"] == "cancelled"
    again = await gateway.post(cancel, headers=manager.auth)
    assert again.status_code == 409 and again.json()["code"] == "order_not_pending"


async def test_members_read_but_do_not_buy(gateway, people, paid):
    account = people.manager.account_id
    for rest in ("/wallet", "/ledger", "/orders", f"/orders/{paid['id']}", "/documents"):
        assert (await gateway.get(account_path(account, rest), headers=people.member)).status_code == 200, rest
    pdf = await gateway.get(account_path(account, f"/documents/{paid['invoice']['id']}/pdf"), headers=people.member)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    item = (await price_items(gateway))[UNIT]
    lines = {"lines": [{"item_id": item["id"], "quantity": 1}]}
    refusals = [
        await gateway.post(account_path(account, "/orders"), json=lines, headers=people.member),
        await gateway.post(
            account_path(account, "/purchase-orders"),
            json=lines | {"buyer_order_number": "BC-9", "service_code": "S"},
            headers=people.member,
        ),
        await gateway.post(account_path(account, f"/orders/{paid['id']}/cancel"), headers=people.member),
        await gateway.put(
            account_path(account, f"/orders/{paid['id']}/signed-order"),
            content=PDF_BYTES,
            headers={**people.member, "Content-Type": "application/pdf"},
        ),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refusals] == [(403, "forbidden")] * 4


async def test_an_organiser_reads_any_account_but_does_not_buy_for_it(gateway, people, paid):
    account = people.manager.account_id
    wallet = await gateway.get(account_path(account, "/wallet"), headers=people.organiser)
    assert wallet.status_code == 200 and wallet.json()["balance"] >= 6
    unknown = await gateway.get(account_path(str(uuid.uuid4()), "/wallet"), headers=people.organiser)
    assert unknown.status_code == 404
    item = (await price_items(gateway))[UNIT]
    lines = {"lines": [{"item_id": item["id"], "quantity": 1}]}
    assert (
        await gateway.post(account_path(account, "/orders"), json=lines, headers=people.organiser)
    ).status_code == 403


async def test_another_institution_finds_nothing_whatever_it_asks(gateway, people, paid):
    a, b = people.manager.account_id, people.other
    invoice = paid["invoice"]
    item = (await price_items(gateway))[UNIT]
    lines = {"lines": [{"item_id": item["id"], "quantity": 1}]}
    year = datetime.now(UTC).year
    asked = [
        ("GET", account_path(a, rest), None)
        for rest in (
            "/wallet",
            "/ledger",
            "/orders",
            f"/orders/{paid['id']}",
            "/documents",
            f"/documents/{invoice['id']}/pdf",
            f"/documents/{invoice['number']}/pdf",
            f"/documents/F{year}-000001/pdf",
        )
    ] + [
        ("POST", account_path(a, "/orders"), lines),
        ("POST", account_path(a, f"/orders/{paid['id']}/cancel"), None),
        # A's order and documents asked through B's own account: not B's either
        ("GET", account_path(b.account_id, f"/orders/{paid['id']}"), None),
        ("GET", account_path(b.account_id, f"/documents/{invoice['id']}/pdf"), None),
        ("GET", account_path(b.account_id, f"/documents/{invoice['number']}/pdf"), None),
    ]
    for method, path, body in asked:
        answer = await gateway.request(method, path, json=body, headers=b.auth)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text[:200]}"
        assert answer.json()["code"] == "not_found"
        assert (await gateway.request(method, path, json=body)).status_code == 401
    escaping = await gateway.get(account_path(b.account_id, "/documents/..%2F..%2Fwallet/pdf"), headers=b.auth)
    assert escaping.status_code == 404


async def test_the_webhook_takes_only_what_the_provider_signed(gateway, system, people):
    event = unhandled_event()
    body, headers = stripe_signed(event, system.webhook_secret)
    accepted = await gateway.post("/api/v1/payments/webhook", content=body, headers=headers)
    assert accepted.status_code == 200 and accepted.json() == {"received": True}
    forged_body, forged = stripe_signed(event, "whsec_not_the_secret")
    refused = await gateway.post("/api/v1/payments/webhook", content=forged_body, headers=forged)
    assert refused.status_code == 400 and refused.json()["code"] == "bad_signature"
    stale_body, stale = stripe_signed(
        unhandled_event(), system.webhook_secret, at=int(datetime.now(UTC).timestamp()) - 3600
    )
    refused = await gateway.post("/api/v1/payments/webhook", content=stale_body, headers=stale)
    assert refused.status_code == 400 and refused.json()["code"] == "stale_signature"
    unsigned = await gateway.post("/api/v1/payments/webhook", content=body)
    assert unsigned.status_code == 400
    # signed, but for no order of ours (another product on the same provider account): acknowledged, or the
    # provider would retry it for days
    stranger = str(uuid.uuid4())
    foreign = completed_event(f"cs_test_{uuid.uuid4().hex}", stranger, 7200)
    foreign_body, foreign_headers = stripe_signed(foreign, system.webhook_secret)
    ignored = await gateway.post("/api/v1/payments/webhook", content=foreign_body, headers=foreign_headers)
    assert (ignored.status_code, ignored.json()) == (200, {"received": True, "ignored": "unknown_order"})


def completed_event(checkout_id: str, order_id: str, amount_cents: int) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(datetime.now(UTC).timestamp()),
        "data": {
            "object": {
                "id": checkout_id,
                "object": "checkout.session",
                "client_reference_id": order_id,
                "payment_status": "paid",
                "amount_total": amount_cents,
                "metadata": {"order_id": order_id},
            }
        },
    }


async def test_a_forged_payment_credits_nothing(gateway, system, people):
    manager = people.manager
    order = await card_order(gateway, manager.auth, manager.account_id, UNIT)
    checkout_id = order["checkout_url"].rsplit("/", 1)[1]
    body, headers = stripe_signed(completed_event(checkout_id, order["id"], 7200), "whsec_guessed")
    assert (await gateway.post("/api/v1/payments/webhook", content=body, headers=headers)).status_code == 400
    still = await gateway.get(account_path(manager.account_id, f"/orders/{order['id']}"), headers=manager.auth)
    assert still.json()["status"] == "awaiting_payment"
