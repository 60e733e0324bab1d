"""Buying tokens in a real browser (Debian's Chromium driven by Playwright) against the real services: a school's
manager logs in, opens "Achat de jetons", puts a bundle in the cart and sees its total, pays by card on the sandbox
provider's page, comes back to the order's page (paid, tokens credited), finds the invoice in "Mes factures" and
downloads its PDF. axe-core checks every page met on the way, which is also shot at desktop and phone widths."""

import httpx
import pytest
from playwright.async_api import Page, expect

from api_world import PASSWORD, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots

pytestmark = pytest.mark.infra


async def log_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Adresse e-mail", exact=True).fill(email)
    await page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#person-name")).to_have_text("Camille Martin")


async def checked(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshots(page, f"billing--{name}")
    await assert_no_horizontal_scroll(page)


async def test_a_manager_buys_a_bundle_by_card_and_downloads_the_invoice(new_context, system, stack) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "browser-buyer", verified_with=stack.mail_api)
    page = await (await new_context(accept_downloads=True)).new_page()
    await log_in(page, manager.email)

    await page.get_by_role("navigation", name="Mon compte").get_by_role("link", name="Achat de jetons").click()
    await page.wait_for_url("**/account/tokens")
    await expect(page.locator("#balance-tokens")).to_have_text("0")
    await checked(page, "tokens")

    await page.get_by_label("Quantité : Forfait 5 jetons + 1 offert").fill("1")
    await page.get_by_role("button", name="Mettre à jour").click()
    await expect(page.locator("#cart-gross")).to_contain_text("360,00")
    await expect(page.locator("#cart-tokens")).to_have_text("6")
    await checked(page, "cart")

    await page.get_by_role("button", name="Payer par carte").click()
    await page.wait_for_url("**/payments/sandbox/**")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Paiement de test")
    await expect(page.locator("#checkout-amount")).to_contain_text("360,00")
    await checked(page, "sandbox")

    await page.get_by_role("button", name="Payer", exact=True).click()
    await page.wait_for_url("**/account/orders/*?paid=1")
    confirmed = page.get_by_text("Paiement reçu : 6 jetons ont été ajoutés à votre solde.", exact=False)
    for _ in range(20):  # the webhook is handled before the sandbox answers; on a busy machine, the reload link
        if await confirmed.count():
            break
        await page.get_by_role("link", name="Actualiser la page").click()
    await expect(confirmed).to_be_visible()
    await expect(page.locator("#order-state")).to_have_attribute("data-status", "paid")
    await checked(page, "order-paid")

    await page.get_by_role("navigation", name="Mon compte").get_by_role("link", name="Mes factures").click()
    await page.wait_for_url("**/account/invoices")
    rows = page.locator("#documents tbody tr")
    await expect(rows).to_have_count(1)
    await checked(page, "invoices")
    async with page.expect_download() as download_info:
        await rows.first.get_by_role("link", name="Télécharger").click()
    download = await download_info.value
    path = await download.path()
    assert path is not None and path.read_bytes().startswith(b"%PDF")
    assert download.suggested_filename.endswith(".pdf")

    await page.get_by_role("navigation", name="Mon compte").get_by_role("link", name="Tableau de bord").click()
    await expect(page.locator("#wallet-balance")).to_have_text("6")
    await checked(page, "dashboard")
