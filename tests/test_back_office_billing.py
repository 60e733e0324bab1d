"""The organisers' billing back-office, through the gateway (its JSON API and its pages' forms) against the real
billing service, accounts, notifier, PostgreSQL and Kafka: a price change shows on the public price list and
leaves placed orders alone; a purchase order waits with its age (late past 20 hours), then its validation credits
the tokens and issues an invoice, or its refusal credits nothing; a transfer received marks the invoice paid; a
credit note references its invoice; the revenue is the invoices minus the credit notes; the accountant's CSV has
one line per document. Nobody but organisers sees any of it (404 on the pages, 403 on the API)."""

import csv
import io
import re
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import babel.numbers
import httpx
import pytest
from portal_world import portal_login, submit

from api_world import Manager, grant_organiser, log_in, sign_up

pytestmark = pytest.mark.infra

PARIS = ZoneInfo("Europe/Paris")
API = "/api/v1/back-office"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CSV_COLUMNS = [
    "numero",
    "type",
    "date",
    "client",
    "siret",
    "montant_ht",
    "tva",
    "montant_ttc",
    "paiement",
    "paye_le",
    "facture",
]
PAGES = (
    "/back-office/price-list",
    "/back-office/purchase-orders",
    "/back-office/payments",
    "/back-office/invoices",
    "/back-office/revenue",
)


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def organiser_person(system) -> Manager:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        person = await sign_up(client, "billing-organiser")
        await grant_organiser(system, person.email)
        return replace(person, auth=await log_in(client, person.email))


@pytest.fixture
def organiser(organiser_person: Manager) -> dict[str, str]:
    """The organiser's API credential."""
    return organiser_person.auth


@pytest.fixture
async def back_office(system, organiser_person: Manager):
    """The organiser's web session, for the pages."""
    client = await portal_login(system.url("gateway"), organiser_person.email)
    try:
        yield client
    finally:
        await client.aclose()


def card_of(html: str, order_id: str) -> tuple[str, str]:
    """(the opening tag, the whole card) of a pending order on the purchase orders page."""
    chunks = html.split('<li class="card order')[1:]
    [chunk] = [c for c in chunks if f'id="order-{order_id}"' in c.split(">", 1)[0]]
    return chunk.split(">", 1)[0], chunk


def euros(cents: int) -> str:
    return babel.numbers.format_currency(Decimal(cents) / 100, "EUR", locale="fr")


async def school(gateway: httpx.AsyncClient, system, label: str) -> Manager:  # type: ignore[no-untyped-def]
    return await sign_up(gateway, label, verified_with=system.stack.mail_api)


async def unit_item(gateway: httpx.AsyncClient) -> dict[str, Any]:
    listed = await gateway.get("/api/v1/price-list")
    assert listed.status_code == 200, listed.text
    [unit] = [item for item in listed.json()["items"] if item["code"] == "unit"]
    return unit


async def send_purchase_order(
    gateway: httpx.AsyncClient, manager: Manager, item_id: str, quantity: int, signed: bool = False
) -> dict[str, Any]:
    """A school's purchase order through the gateway's API, with the signed order's PDF when `signed`."""
    body = {
        "lines": [{"item_id": item_id, "quantity": quantity}],
        "buyer_order_number": f"BC-{uuid.uuid4().hex[:6]}",
        "service_code": "SERVICE-FACTURATION",
        "commitment_number": f"ENG-{uuid.uuid4().hex[:6]}",
    }
    placed = await gateway.post(
        f"/api/v1/accounts/{manager.account_id}/purchase-orders", json=body, headers=manager.auth
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "awaiting_validation"
    if signed:
        path = f"/api/v1/accounts/{manager.account_id}/orders/{order['id']}/signed-order"
        attached = await gateway.put(path, content=PDF, headers={**manager.auth, "Content-Type": "application/pdf"})
        assert attached.status_code == 204, attached.text
    return order


async def order_of(gateway: httpx.AsyncClient, manager: Manager, order_id: str) -> dict[str, Any]:
    answer = await gateway.get(f"/api/v1/accounts/{manager.account_id}/orders/{order_id}", headers=manager.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def balance_of(gateway: httpx.AsyncClient, manager: Manager) -> int:
    answer = await gateway.get(f"/api/v1/accounts/{manager.account_id}/wallet", headers=manager.auth)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


async def post_form(client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    return await submit(client, page, action, fields, follow_redirects=False)


async def validated_order(gateway, system, organiser, label: str, quantity: int = 2):  # type: ignore[no-untyped-def]
    """A new school's purchase order, validated by the organiser through the API."""
    manager = await school(gateway, system, label)
    order = await send_purchase_order(gateway, manager, (await unit_item(gateway))["id"], quantity)
    answer = await gateway.post(f"{API}/orders/{order['id']}/validation", headers=organiser)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def every_document(gateway: httpx.AsyncClient, organiser: dict[str, str], **query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = await gateway.get(
            f"{API}/documents", params={**query, "limit": 200, "offset": len(found)}, headers=organiser
        )
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        if len(found) >= page.json()["total"] or not page.json()["items"]:
            return found


def item_form(**changes: str) -> dict[str, str]:
    fields = {
        "code": f"test-{uuid.uuid4().hex[:8]}",
        "label_fr": "Jeton d'essai",
        "label_en": "Trial token",
        "tokens": "1",
        "bonus_tokens": "0",
        "net": "50,00",
        "vat_rate": "20",
        "validity": "24_months",
        "purchase_order_allowed": "on",
        "active": "on",
        "position": "90",
    }
    return fields | changes


# -- the price list ------------------------------------------------------------------------------------------------


async def test_a_price_change_shows_on_the_public_list_and_leaves_placed_orders_alone(
    gateway, back_office, system, organiser
):
    fields = item_form()
    added = await post_form(back_office, "/back-office/price-list", "/back-office/price-list", fields)
    assert (added.status_code, added.headers["location"]) == (303, "/back-office/price-list?done=created")
    [item] = [i for i in (await gateway.get("/api/v1/price-list")).json()["items"] if i["code"] == fields["code"]]
    assert item["price"]["net"]["amount_cents"] == 5000 and item["price"]["gross"]["amount_cents"] == 6000

    manager = await school(gateway, system, "billing-price")
    order = await send_purchase_order(gateway, manager, item["id"], 2)

    edit = f"/back-office/price-list/{item['id']}"
    refused = await post_form(
        back_office, "/back-office/price-list", edit, fields | {"net": "cinquante", "tokens": "0"}
    )
    assert refused.status_code == 400
    assert (
        f'id="item-{item["id"]}-net-error"' in refused.text and f'id="item-{item["id"]}-tokens-error"' in refused.text
    )
    assert 'value="cinquante"' in refused.text  # what was typed comes back
    changed = await post_form(
        back_office, "/back-office/price-list", edit, fields | {"net": "55,50", "vat_rate": "5,5"}
    )
    assert (changed.status_code, changed.headers["location"]) == (303, "/back-office/price-list?done=updated")

    [now] = [i for i in (await gateway.get("/api/v1/price-list")).json()["items"] if i["id"] == item["id"]]
    assert (now["price"]["net"]["amount_cents"], now["price"]["vat_rate_bp"]) == (5550, 550)
    assert now["price"]["vat"]["amount_cents"] == 305 and now["price"]["gross"]["amount_cents"] == 5855
    shown = await back_office.get("/back-office/price-list")
    row = re.search(rf'<tr id="item-{item["id"]}".*?</tr>', shown.text, re.DOTALL)
    assert row and "58,55" in row.group() and "5,5" in row.group(), row and row.group()

    [line] = (await order_of(gateway, manager, order["id"]))["lines"]
    assert line["unit_price"]["net"]["amount_cents"] == 5000 and line["unit_price"]["vat_rate_bp"] == 2000
    assert line["total"]["gross"]["amount_cents"] == 12000

    taken = await post_form(back_office, "/back-office/price-list", "/back-office/price-list", fields)
    assert taken.status_code == 409 and 'id="item-new-code-error"' in taken.text
    # off the list again, so that other tests see the price list they expect
    body = {**{k: now[k] for k in ("code", "label_fr", "label_en", "tokens", "bonus_tokens", "validity")}}
    body |= {"net_cents": 5550, "vat_rate_bp": 550, "purchase_order_allowed": True, "active": False, "position": 90}
    withdrawn = await gateway.put(f"{API}/price-list/{item['id']}", json=body, headers=organiser)
    assert withdrawn.status_code == 200 and withdrawn.json()["active"] is False, withdrawn.text
    assert item["id"] not in [i["id"] for i in (await gateway.get("/api/v1/price-list")).json()["items"]]


# -- purchase orders -------------------------------------------------------------------------------------------------


async def test_a_purchase_order_waits_with_its_age_then_its_validation_credits_tokens_and_issues_an_invoice(
    gateway, back_office, system, organiser
):
    manager = await school(gateway, system, "billing-po-valid")
    order = await send_purchase_order(gateway, manager, (await unit_item(gateway))["id"], 3, signed=True)

    pending = await gateway.get(
        f"{API}/orders", params={"status": "awaiting_validation", "limit": 200}, headers=organiser
    )
    assert pending.status_code == 200, pending.text
    [listed] = [o for o in pending.json()["items"] if o["id"] == order["id"]]
    assert listed["age_seconds"] >= 0 and listed["has_signed_order"] is True

    opening, card = card_of((await back_office.get("/back-office/purchase-orders")).text, order["id"])
    assert "Reçu il y a moins d'une heure" in card and "overdue" not in opening
    for value in (order["reference"], order["buyer_order_number"], "SERVICE-FACTURATION", order["commitment_number"]):
        assert value in card
    link = f"/back-office/purchase-orders/{order['id']}/signed-order"
    assert link in card
    signed = await back_office.get(link)
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")
    by_api = await gateway.get(f"{API}/orders/{order['id']}/signed-order", headers=organiser)
    assert by_api.status_code == 200 and by_api.content == signed.content == PDF

    # a day's silence: the order is shown late (its age is billing's, from when it was placed)
    billing_db = await asyncpg.connect(system.stack.database_url("billing").replace("+asyncpg", ""))
    try:
        await billing_db.execute(
            "UPDATE orders SET created_at = created_at - interval '21 hours' WHERE id = $1", uuid.UUID(order["id"])
        )
    finally:
        await billing_db.close()
    opening, card = card_of((await back_office.get("/back-office/purchase-orders")).text, order["id"])
    assert "overdue" in opening and "En retard" in card and "Reçu il y a 21 heures" in card

    assert await balance_of(gateway, manager) == 0
    action = f"/back-office/purchase-orders/{order['id']}/validation"
    validated = await post_form(back_office, "/back-office/purchase-orders", action, {})
    assert (validated.status_code, validated.headers["location"]) == (
        303,
        "/back-office/purchase-orders?done=validated",
    )
    assert await balance_of(gateway, manager) == 3
    done = await order_of(gateway, manager, order["id"])
    assert done["status"] == "validated" and done["validated_at"] and done["invoice"]["number"].startswith("F")
    [invoice] = await every_document(gateway, organiser, q=order["reference"])
    assert (invoice["kind"], invoice["number"], invoice["paid"]) == ("invoice", done["invoice"]["number"], False)
    assert invoice["total"]["gross"]["amount_cents"] == 3 * 7200

    after = await back_office.get("/back-office/purchase-orders")
    assert f'id="order-{order["id"]}"' not in after.text  # no longer pending
    assert f'data-reference="{order["reference"]}"' in after.text and done["invoice"]["number"] in after.text
    again = await post_form(back_office, "/back-office/purchase-orders", action, {})
    assert again.status_code == 409 and "déjà été traité" in again.text
    assert await balance_of(gateway, manager) == 3


async def test_a_refused_purchase_order_credits_nothing_and_says_why(gateway, back_office, system, organiser):
    manager = await school(gateway, system, "billing-po-refused")
    order = await send_purchase_order(gateway, manager, (await unit_item(gateway))["id"], 2)
    action = f"/back-office/purchase-orders/{order['id']}/refusal"

    empty = await post_form(back_office, "/back-office/purchase-orders", action, {"reason": "  "})
    assert empty.status_code == 400 and f'id="reason-{order["id"]}-error"' in empty.text
    reason = "Le bon n'est pas signé par l'ordonnateur."
    refused = await post_form(back_office, "/back-office/purchase-orders", action, {"reason": reason})
    assert (refused.status_code, refused.headers["location"]) == (303, "/back-office/purchase-orders?done=refused")

    done = await order_of(gateway, manager, order["id"])
    assert (done["status"], done["refusal_reason"], done["invoice"]) == ("refused", reason, None)
    assert await balance_of(gateway, manager) == 0
    assert await every_document(gateway, organiser, q=order["reference"]) == []
    twice = await gateway.post(f"{API}/orders/{order['id']}/refusal", json={"reason": "x"}, headers=organiser)
    assert (twice.status_code, twice.json()["code"]) == (409, "order_not_pending")
    validated = await gateway.post(f"{API}/orders/{order['id']}/validation", headers=organiser)
    assert (validated.status_code, validated.json()["code"]) == (409, "order_not_pending")
    assert await balance_of(gateway, manager) == 0


# -- money received, credit notes ------------------------------------------------------------------------------------


async def test_a_transfer_received_marks_the_invoice_paid(gateway, back_office, system, organiser):
    order = await validated_order(gateway, system, organiser, "billing-transfer")
    invoice = order["invoice"]
    awaited = await back_office.get("/back-office/payments")
    assert f'data-number="{invoice["number"]}"' in awaited.text

    action = f"/back-office/payments/{invoice['id']}/received"
    bad = await post_form(back_office, "/back-office/payments", action, {"received_on": "hier"})
    assert bad.status_code == 400 and f'id="received-on-{invoice["id"]}-error"' in bad.text
    day = datetime.now(PARIS).date().isoformat()
    marked = await post_form(back_office, "/back-office/payments", action, {"received_on": day})
    assert (marked.status_code, marked.headers["location"]) == (303, "/back-office/payments?done=received")

    [document] = await every_document(gateway, organiser, q=invoice["number"])
    assert document["paid"] is True and document["paid_at"][:10] == day  # noon in Paris, that day
    received = await gateway.get(f"{API}/payments", params={"limit": 200}, headers=organiser)
    assert received.status_code == 200, received.text
    [payment] = [p for p in received.json()["items"] if p["order_id"] == order["id"]]
    assert payment["amount"]["amount_cents"] == order["total"]["gross"]["amount_cents"]
    assert payment["document_number"] == invoice["number"]
    after = await back_office.get("/back-office/payments")
    assert f'data-number="{invoice["number"]}"' not in after.text  # no longer awaited
    assert f'data-reference="{order["reference"]}"' in after.text  # among the payments received


async def test_a_credit_note_references_its_invoice(gateway, back_office, system, organiser):
    order = await validated_order(gateway, system, organiser, "billing-credit")
    invoice = order["invoice"]
    action = f"/back-office/invoices/{invoice['id']}/credit-note"
    empty = await post_form(back_office, "/back-office/invoices", action, {"reason": ""})
    assert empty.status_code == 400 and f'id="reason-{invoice["id"]}-error"' in empty.text
    issued = await post_form(back_office, "/back-office/invoices", action, {"reason": "Commande passée en double."})
    assert (issued.status_code, issued.headers["location"]) == (303, "/back-office/invoices?done=credited")

    documents = await every_document(gateway, organiser, q=order["reference"])
    [note] = [d for d in documents if d["kind"] == "credit_note"]
    assert (note["invoice_id"], note["invoice_number"], note["order_id"]) == (
        invoice["id"],
        invoice["number"],
        order["id"],
    )
    assert note["number"].startswith("A") and note["total"]["gross"]["amount_cents"] in (
        order["total"]["gross"]["amount_cents"],
        -order["total"]["gross"]["amount_cents"],
    )
    pdf = await back_office.get(f"/back-office/invoices/{note['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    api_pdf = await gateway.get(f"{API}/documents/{note['id']}/pdf", headers=organiser)
    assert api_pdf.status_code == 200 and api_pdf.headers["content-type"].startswith("application/pdf")

    shown = await back_office.get("/back-office/invoices", params={"q": order["reference"]})
    row = re.search(rf'<tr data-number="{invoice["number"]}".*?</tr>', shown.text, re.DOTALL)
    assert row and note["number"] in row.group() and "Émettre un avoir" not in row.group()
    again = await gateway.post(
        f"{API}/documents/{invoice['id']}/credit-note", json={"reason": "encore"}, headers=organiser
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_credited")
    only_notes = await gateway.get(
        f"{API}/documents", params={"q": order["reference"], "kind": "credit_note"}, headers=organiser
    )
    assert [d["number"] for d in only_notes.json()["items"]] == [note["number"]]


# -- revenue and the accountant's export -------------------------------------------------------------------------


async def test_the_revenue_is_the_invoices_minus_the_credit_notes_per_month(gateway, back_office, system, organiser):
    order = await validated_order(gateway, system, organiser, "billing-revenue", quantity=4)
    credited = await gateway.post(
        f"{API}/documents/{order['invoice']['id']}/credit-note", json={"reason": "Erreur"}, headers=organiser
    )
    assert credited.status_code == 201, credited.text
    await validated_order(gateway, system, organiser, "billing-revenue-kept", quantity=1)

    year = datetime.now(PARIS).year
    documents = await every_document(gateway, organiser, **{"from": f"{year}-01-01", "to": f"{year}-12-31"})
    answer = await gateway.get(f"{API}/revenue", params={"year": year}, headers=organiser)
    assert answer.status_code == 200, answer.text
    revenue = answer.json()

    expected: dict[str, dict[str, int]] = defaultdict(lambda: {"net_cents": 0, "vat_cents": 0, "gross_cents": 0})
    for document in documents:
        month = datetime.fromisoformat(document["issued_at"]).astimezone(PARIS).strftime("%Y-%m")
        sign = 1 if document["kind"] == "invoice" else -1
        for name, part in (("net_cents", "net"), ("vat_cents", "vat"), ("gross_cents", "gross")):
            expected[month][name] += sign * abs(document["total"][part]["amount_cents"])
    assert revenue["year"] == year and [m["month"] for m in revenue["months"]] == [
        f"{year}-{month:02d}" for month in range(1, 13)
    ]
    for month in revenue["months"]:
        figures = expected[month["month"]]
        assert {name: month[name] for name in figures} == figures, month["month"]
    assert revenue["total"]["net_cents"] == sum(m["net_cents"] for m in revenue["months"])

    page = await back_office.get("/back-office/revenue", params={"year": str(year)})
    assert page.status_code == 200
    assert "<svg" in page.text and page.text.count('<rect class="bar') == 12 and "style=" not in page.text
    this_month = datetime.now(PARIS).strftime("%Y-%m")
    row = re.search(rf'<tr data-month="{this_month}">.*?</tr>', page.text, re.DOTALL)
    assert row and euros(expected[this_month]["net_cents"]) in row.group(), row


async def test_the_accountants_csv_has_one_line_per_document(gateway, back_office, system, organiser):
    await validated_order(gateway, system, organiser, "billing-csv")
    today = datetime.now(PARIS).date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    documents = await every_document(gateway, organiser, **span)
    exported = await gateway.get(f"{API}/documents.csv", params=span, headers=organiser)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == CSV_COLUMNS
    assert sorted(row[0] for row in rows[1:]) == sorted(d["number"] for d in documents)
    by_number = {d["number"]: d for d in documents}
    for row in rows[1:]:
        gross = abs(by_number[row[0]]["total"]["gross"]["amount_cents"])
        assert (
            row[7].lstrip("-").replace("\u202f", "").replace("\xa0", "").replace(" ", "")
            == f"{gross // 100},{gross % 100:02d}"
        ), row

    from_page = await back_office.get("/back-office/invoices.csv", params=span)
    assert from_page.status_code == 200 and "attachment" in from_page.headers["content-disposition"]
    assert len(list(csv.reader(io.StringIO(from_page.content.decode("utf-8-sig")), delimiter=";"))) == len(rows)
    listing = await back_office.get("/back-office/invoices", params=span)
    assert f'href="/back-office/invoices.csv?from={span["from"]}&amp;to={span["to"]}"' in listing.text


# -- nobody else ------------------------------------------------------------------------------------------------------


async def test_nobody_but_organisers_sees_the_billing_back_office(gateway, system):
    manager = await school(gateway, system, "billing-outsider")
    some_id = uuid.uuid4()
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        for path in (*PAGES, f"/back-office/invoices/{some_id}/pdf", "/back-office/invoices.csv"):
            assert (await client.get(path)).status_code == 404, path
        refused = await submit(client, "/account", "/back-office/price-list", item_form(), follow_redirects=False)
        assert refused.status_code == 404
    finally:
        await client.aclose()
    for method, path in (
        ("GET", "/price-list"),
        ("GET", "/orders"),
        ("GET", "/documents"),
        ("GET", "/payments"),
        ("GET", "/revenue"),
        ("GET", "/documents.csv"),
        ("GET", f"/documents/{some_id}/pdf"),
        ("POST", f"/orders/{some_id}/validation"),
    ):
        answer = await gateway.request(method, API + path, headers=manager.auth)
        assert (answer.status_code, answer.json()["code"]) == (403, "organisers_only"), path
        assert (await gateway.request(method, API + path)).status_code == 401, path
    anonymous = await gateway.get("/back-office/revenue", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
