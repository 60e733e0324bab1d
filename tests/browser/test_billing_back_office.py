"""A school pays on a purchase order and an organiser validates it, in a real browser (Debian's Chromium driven by
Playwright) against the real services: the school's manager fills the purchase-order form of "Achat de jetons"
with the signed order's PDF; the organiser finds it at the top of "Bons de commande" with its age, its numbers
and the signed PDF, validates it; the school then sees the order validated, its tokens and the invoice. axe-core
checks every page met on the way (tests/browser/checks.py)."""

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from api_world import grant_organiser, log_in, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots

pytestmark = pytest.mark.infra

SIGNED_ORDER = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def signed_in(new_context: Any, system: Any, token: str) -> BrowserContext:
    """A browser context holding a web session (the cookie holds the API's session token: gateway.web)."""
    context: BrowserContext = await new_context()
    await context.add_cookies([{"name": "vp_session", "value": token, "url": system.url("gateway")}])
    return context


def session_token(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


async def test_a_school_sends_a_purchase_order_and_an_organiser_validates_it(new_context, system, stack):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        school = await sign_up(gateway, "browser-po-school", verified_with=stack.mail_api)
        organiser = await sign_up(gateway, "browser-po-organiser")
        await grant_organiser(system, organiser.email)
        organiser_auth = await log_in(gateway, organiser.email)
        [unit] = [item for item in (await gateway.get("/api/v1/price-list")).json()["items"] if item["code"] == "unit"]
    order_number = f"BC-{uuid.uuid4().hex[:6].upper()}"

    # the school's manager fills the purchase-order form, with the signed order
    manager = await (await signed_in(new_context, system, session_token(school.auth))).new_page()
    await manager.goto("/account/tokens")
    await assert_accessible(manager)
    form = manager.locator('form[action="/account/tokens/purchase-order"]')
    await form.get_by_label("Offre").select_option(unit["id"])
    await form.get_by_label("Quantité", exact=True).fill("2")
    await form.get_by_label("Numéro de votre bon de commande").fill(order_number)
    await form.get_by_label("Code service (Chorus Pro)").fill("SERVICE-FACTURATION")
    await form.get_by_label("Numéro d'engagement").fill("ENG-2026-17")
    await form.get_by_label("Bon de commande signé (PDF)").set_input_files(
        {"name": "bon-de-commande.pdf", "mimeType": "application/pdf", "buffer": SIGNED_ORDER}
    )
    await form.get_by_role("button", name="Envoyer le bon de commande").click()
    await expect(manager.locator("#order-state")).to_have_attribute("data-status", "awaiting_validation")
    await expect(manager.get_by_text("Bon de commande reçu.")).to_be_visible()
    found = re.search(r"/account/orders/([0-9a-f-]{36})", manager.url)
    assert found, manager.url
    order_id = found.group(1)
    await assert_accessible(manager)

    # the organiser finds it waiting, with its age and numbers, opens the signed PDF, validates it
    back_office = await (await signed_in(new_context, system, session_token(organiser_auth))).new_page()
    await back_office.goto("/back-office")
    await back_office.get_by_role("link", name="Bons de commande").click()
    await expect(back_office.get_by_role("heading", level=1)).to_have_text("Bons de commande")
    card = back_office.locator(f"#order-{order_id}")
    await expect(card).to_contain_text("Reçu il y a moins d'une heure")
    await expect(card).to_contain_text(order_number)
    await expect(card).to_contain_text("SERVICE-FACTURATION")
    await expect(card).to_contain_text("ENG-2026-17")
    reference = await card.get_attribute("data-reference")
    assert reference and reference.startswith("C")
    signed_link = card.get_by_role("link", name=re.compile("Ouvrir le bon de commande signé"))
    pdf = await back_office.request.get(await signed_link.get_attribute("href") or "")
    assert pdf.status == 200 and (await pdf.body()) == SIGNED_ORDER
    await assert_accessible(back_office)
    await screenshots(back_office, "back-office--purchase-order-pending")
    await assert_no_horizontal_scroll(back_office)

    await card.get_by_role("button", name=re.compile("^Valider")).click()
    await expect(back_office.get_by_text("Le bon de commande est validé")).to_be_visible()
    await expect(back_office.locator(f"#order-{order_id}")).to_have_count(0)
    handled = back_office.locator(f'#handled-orders tr[data-reference="{reference}"]')
    await expect(handled).to_contain_text("validé le")
    invoice_number = (await handled.locator("td a").inner_text()).strip()
    assert invoice_number.startswith("F"), invoice_number
    await assert_accessible(back_office)
    await screenshots(back_office, "back-office--purchase-order-validated")

    # the invoice is among the organisers' documents; the school sees its tokens and the invoice
    await back_office.get_by_role("link", name="Factures et avoirs").click()
    await back_office.get_by_label("Recherche").fill(reference)
    await back_office.get_by_role("button", name="Rechercher").click()
    await expect(back_office.locator(f'#documents tr[data-number="{invoice_number}"]')).to_be_visible()
    await assert_accessible(back_office)

    await manager.goto(f"/account/orders/{order_id}")
    await expect(manager.locator("#order-state")).to_have_attribute("data-status", "validated")
    await expect(manager.locator("#order-invoice")).to_contain_text(invoice_number)
    await manager.goto("/account/tokens")
    await expect(manager.locator("#balance-tokens")).to_have_text("2")
    await assert_accessible(manager)
