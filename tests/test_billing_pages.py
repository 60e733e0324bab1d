"""The billing pages of "Mon compte" through the real services, as a browser sends them (cookies, forms, CSRF
tokens): "Achat de jetons" with its cart (the total computed by the gateway) and card payment through the sandbox
provider's page, the order's page in plain words where the provider sends the person back, "Mes factures" and the
PDF download; the purchase-order form with the signed order's PDF; members see prices and balance, not the forms;
another institution finds none of A's orders or invoices."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from billing_world import (
    PACK_5,
    PDF_BYTES,
    UNIT,
    People,
    make_people,
    order_of,
    order_until,
    paid_order,
    price_items,
)
from portal_world import csrf_token, portal_login, submit
from test_catalogue_api import published, theme

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def people(system) -> People:
    return await make_people(system, "billing-pages")


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture
async def manager_browser(system, people):
    client = await portal_login(system.url("gateway"), people.manager.email)
    yield client
    await client.aclose()


@pytest.fixture
async def member_browser(system, people):
    from api_world import MEMBER_PASSWORD

    client = await portal_login(system.url("gateway"), people.member_email, MEMBER_PASSWORD)
    yield client
    await client.aclose()


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ").replace("\xa0", " ")


async def test_a_manager_buys_by_card_and_downloads_the_invoice(manager_browser, gateway, people, system):
    items = await price_items(gateway)
    bundle = f"quantity-{items[PACK_5]['id']}"
    page = await manager_browser.get("/account/tokens")
    assert page.status_code == 200
    assert 'id="price-list"' in page.text and f'name="{bundle}"' in page.text
    assert "Payer sur bon de commande" in page.text  # the unit token allows a purchase order

    updated = await submit(
        manager_browser, "/account/tokens", "/account/tokens/cart", {bundle: "2", "action": "update"}
    )
    assert updated.status_code == 200
    assert "720,00 €" in visible_text(updated.text)  # 2 x 360.00 TTC, computed by the gateway
    assert re.search(r'id="cart-tokens">\s*12\s*<', updated.text)

    paying = await submit(manager_browser, "/account/tokens", "/account/tokens/cart", {bundle: "1", "action": "pay"})
    assert paying.status_code == 303
    checkout = urlsplit(paying.headers["location"]).path
    assert checkout.startswith("/payments/sandbox/cs_")
    shown = await manager_browser.get(checkout)
    assert shown.status_code == 200 and "360,00 €" in visible_text(shown.text)
    back = await manager_browser.post(checkout, data={"_csrf_token": csrf_token(shown.text), "action": "pay"})
    assert back.status_code == 303
    returned = urlsplit(back.headers["location"])
    assert returned.query == "paid=1"
    order_id = returned.path.rsplit("/", 1)[1]

    order = await order_until(gateway, people.manager.auth, people.manager.account_id, order_id, "paid")
    landed = await manager_browser.get(f"{returned.path}?{returned.query}")
    assert landed.status_code == 200
    assert "Paiement reçu : 6 jetons ont été ajoutés à votre solde." in visible_text(landed.text)
    assert 'data-status="paid"' in landed.text

    invoices = await manager_browser.get("/account/invoices")
    assert invoices.status_code == 200 and order["invoice"]["number"] in invoices.text
    link = f"/account/invoices/{order['invoice']['id']}.pdf"
    assert link in invoices.text
    pdf = await manager_browser.get(link)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment")

    dashboard = await manager_browser.get("/account")
    assert re.search(r'id="wallet-balance">\s*\d+\s*<', dashboard.text)
    tokens = await manager_browser.get("/account/tokens")
    assert order["reference"] in tokens.text  # its lot, with its expiry
    history = await manager_browser.get("/account/tokens/history")
    assert history.status_code == 200 and 'data-kind="credit"' in history.text
    orders = await manager_browser.get("/account/orders")
    assert f'id="order-{order_id}" data-status="paid"' in orders.text


async def test_a_declined_payment_is_said_in_plain_words(manager_browser, gateway, people):
    items = await price_items(gateway)
    fields = {f"quantity-{items[UNIT]['id']}": "1", "action": "pay"}
    paying = await submit(manager_browser, "/account/tokens", "/account/tokens/cart", fields)
    checkout = urlsplit(paying.headers["location"]).path
    declined = await submit(manager_browser, checkout, checkout, {"action": "decline"})
    assert declined.status_code == 303
    returned = urlsplit(declined.headers["location"])
    order_id = returned.path.rsplit("/", 1)[1]
    await order_until(gateway, people.manager.auth, people.manager.account_id, order_id, "payment_failed")
    page = await manager_browser.get(f"{returned.path}?{returned.query}")
    assert 'data-status="payment_failed"' in page.text
    assert "aucun jeton n'a été crédité" in visible_text(page.text)


async def test_an_abandoned_payment_can_be_resumed_or_cancelled(manager_browser, gateway, people):
    items = await price_items(gateway)
    fields = {f"quantity-{items[UNIT]['id']}": "1", "action": "pay"}
    paying = await submit(manager_browser, "/account/tokens", "/account/tokens/cart", fields)
    checkout_url = paying.headers["location"]
    listed = await gateway.get(f"/api/v1/accounts/{people.manager.account_id}/orders", headers=people.manager.auth)
    order = next(o for o in listed.json()["items"] if o["checkout_url"] == checkout_url)
    page = f"/account/orders/{order['id']}"
    cancelled = await manager_browser.get(f"{page}?cancelled=1")
    assert "Paiement interrompu" in visible_text(cancelled.text)
    assert f'href="{checkout_url}"' in cancelled.text  # "Reprendre le paiement"
    done = await submit(manager_browser, page, f"{page}/cancel", {})
    assert done.status_code == 303 and done.headers["location"] == f"{page}?done=cancelled"
    assert (await order_of(gateway, people.manager.auth, people.manager.account_id, order["id"]))[
        "status"
    ] == "cancelled"


async def test_the_cart_refuses_what_is_not_a_quantity_next_to_its_field(manager_browser, gateway):
    items = await price_items(gateway)
    name = f"quantity-{items[UNIT]['id']}"
    refused = await submit(
        manager_browser, "/account/tokens", "/account/tokens/cart", {name: "beaucoup", "action": "pay"}
    )
    assert refused.status_code == 400
    assert f'href="#field-{name}"' in refused.text  # the summary links to the field
    assert re.search(rf'id="field-{name}"[^>]*aria-invalid="true"', refused.text)
    assert 'value="beaucoup"' in refused.text
    empty = await submit(manager_browser, "/account/tokens", "/account/tokens/cart", {"action": "pay"})
    assert empty.status_code == 400 and "Choisissez la quantité" in empty.text


async def test_a_purchase_order_with_its_signed_pdf(manager_browser, gateway, people):
    items = await price_items(gateway)
    shown = await manager_browser.get("/account/tokens")
    fields = {
        "_csrf_token": csrf_token(shown.text),
        "item_id": items[UNIT]["id"],
        "quantity": "4",
        "buyer_order_number": "BC-2026-042",
        "service_code": "SERVICE-EPLE",
        "commitment_number": "EJ-99",
    }
    files = {"file": ("bon-de-commande.pdf", PDF_BYTES, "application/pdf")}
    sent = await manager_browser.post("/account/tokens/purchase-order", data=fields, files=files)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].endswith("?done=purchase_order")
    order_id = urlsplit(sent.headers["location"]).path.rsplit("/", 1)[1]
    page = await manager_browser.get(sent.headers["location"])
    assert "Bon de commande reçu" in page.text and 'data-status="awaiting_validation"' in page.text
    order = await order_of(gateway, people.manager.auth, people.manager.account_id, order_id)
    assert (order["tokens"], order["has_signed_order"], order["service_code"]) == (4, True, "SERVICE-EPLE")


async def test_a_purchase_order_names_sessions_from_the_planning_and_its_page_shows_them(
    manager_browser, gateway, people, system
):
    headers = {"X-Internal-Token": system.internal_token, "X-Actor-Id": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=system.url("catalogue"), headers=headers, timeout=30) as catalogue:
        theme_id = await theme(catalogue, title=f"Vie scolaire {uuid.uuid4().hex[:6]}")
        session = await published(catalogue, theme_id, datetime.now(UTC) + timedelta(days=12), title="Appel en ligne")
    shown = await manager_browser.get("/account/tokens")
    assert f'<option value="{session["id"]}"' in shown.text  # offered on the form
    fields = {
        "_csrf_token": csrf_token(shown.text),
        "item_id": (await price_items(gateway))[UNIT]["id"],
        "quantity": "1",
        "buyer_order_number": "BC-2026-043",
        "service_code": "SERVICE-EPLE",
    }
    refused = await manager_browser.post(
        "/account/tokens/purchase-order", data=fields | {"enrol_session_ids": "pas une séance"}
    )
    assert refused.status_code == 400 and 'id="error-enrol_session_ids"' in refused.text
    sent = await manager_browser.post(
        "/account/tokens/purchase-order", data=fields | {"enrol_session_ids": [session["id"]]}
    )
    assert sent.status_code == 303, sent.text
    order_id = urlsplit(sent.headers["location"]).path.rsplit("/", 1)[1]
    order = await order_of(gateway, people.manager.auth, people.manager.account_id, order_id)
    assert order["enrol_session_ids"] == [session["id"]]
    page = visible_text((await manager_browser.get(sent.headers["location"])).text)
    assert "Séances demandées" in page and "Appel en ligne" in page


async def test_the_purchase_order_form_shows_each_problem_next_to_its_field(manager_browser, gateway):
    items = await price_items(gateway)
    shown = await manager_browser.get("/account/tokens")
    fields = {
        "_csrf_token": csrf_token(shown.text),
        "item_id": items[UNIT]["id"],
        "quantity": "2",
        "buyer_order_number": "BC-7",
        "service_code": "",
    }
    files = {"file": ("bon.pdf", b"not a pdf at all", "application/pdf")}
    refused = await manager_browser.post("/account/tokens/purchase-order", data=fields, files=files)
    assert refused.status_code == 400
    for name in ("service_code", "file"):
        assert f'href="#field-{name}"' in refused.text, name
        assert re.search(rf'id="field-{name}"[^>]*aria-invalid="true"', refused.text), name
    assert 'value="BC-7"' in refused.text  # what was typed is kept


async def test_members_see_prices_and_balance_but_not_the_forms(member_browser, system, people):
    await paid_order(system.url("gateway"), people.manager.auth, people.manager.account_id, PACK_5)
    page = await member_browser.get("/account/tokens")
    assert page.status_code == 200
    assert 'id="price-list"' in page.text and 'id="balance-tokens"' in page.text
    assert 'id="buy-managers-only"' in page.text
    assert "/account/tokens/cart" not in page.text and "/account/tokens/purchase-order" not in page.text
    refused = await member_browser.post(
        "/account/tokens/cart", data={"_csrf_token": csrf_token(page.text), "action": "pay"}
    )
    assert refused.status_code == 403
    invoices = await member_browser.get("/account/invoices")
    [link] = re.findall(r'href="(/account/invoices/[^"]+\.pdf)"', invoices.text)[:1]
    assert (await member_browser.get(link)).content.startswith(b"%PDF")


async def test_another_institution_finds_none_of_its_orders_or_invoices(system, people):
    order = await paid_order(system.url("gateway"), people.manager.auth, people.manager.account_id, PACK_5)
    other = await portal_login(system.url("gateway"), people.other.email)
    try:
        for path in (
            f"/account/orders/{order['id']}",
            f"/account/invoices/{order['invoice']['id']}.pdf",
            f"/account/invoices/{order['invoice']['number']}.pdf",
            f"/account/invoices/{order['invoice']['id']}",
        ):
            assert (await other.get(path)).status_code == 404, path
        shown = await other.get("/account/tokens")
        cancel = await other.post(f"/account/orders/{order['id']}/cancel", data={"_csrf_token": csrf_token(shown.text)})
        assert cancel.status_code == 404
        invoices = await other.get("/account/invoices")
        assert order["invoice"]["number"] not in invoices.text
    finally:
        await other.aclose()


async def test_the_sandbox_page_exists_only_for_a_checkout_billing_knows(gateway):
    assert (await gateway.get("/payments/sandbox/cs_sandbox_0000")).status_code == 404
    assert (await gateway.get("/payments/sandbox/..%2Fetc")).status_code == 404


async def test_the_pages_speak_english_to_who_chose_it(member_browser, system, people):
    shown = await member_browser.get("/account/tokens")
    switched = await member_browser.post(
        "/language", data={"_csrf_token": csrf_token(shown.text), "language": "en", "next": "/account/tokens"}
    )
    assert switched.status_code == 303
    try:
        page = await member_browser.get("/account/tokens")
        text = visible_text(page.text)
        assert "<h1" in page.text and "Buy tokens" in text and "Bundle of 5 tokens + 1 free" in text
        assert "€72.00" in text and "24 months from purchase" in text
        invoices = visible_text((await member_browser.get("/account/invoices")).text)
        assert "My invoices" in invoices or "Invoices" in invoices
    finally:
        await member_browser.post(
            "/language", data={"_csrf_token": csrf_token(shown.text), "language": "fr", "next": "/account"}
        )
