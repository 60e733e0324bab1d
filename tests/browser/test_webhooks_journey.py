"""Outgoing webhooks in a real browser (Debian's Chromium driven by Playwright) against the real services: a school's
manager logs in, opens Mon compte > Webhooks, adds an endpoint for two events, reads its signing secret once (on the
answer to the form, never again), finds it in the list, opens it and sends it a test event, which shows in its
recent deliveries. axe-core checks every page met on the way, which is also shot at desktop and phone widths."""

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from api_world import PASSWORD, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots

pytestmark = pytest.mark.infra

HOOK_URL = "https://hooks.example.com/ent-lycee"  # never reached: the delivery stays pending


async def log_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Adresse e-mail", exact=True).fill(email)
    await page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#person-name")).to_have_text("Camille Martin")


async def checked(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshots(page, f"webhooks--{name}")
    await assert_no_horizontal_scroll(page)


async def test_a_manager_adds_a_webhook_sees_its_secret_once_and_sends_a_test_event(new_context, system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "browser-webhooks")
    page = await (await new_context()).new_page()
    await log_in(page, manager.email)

    await page.get_by_role("navigation", name="Mon compte").get_by_role("link", name="Webhooks").click()
    await page.wait_for_url("**/account/webhooks")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    await expect(page.locator("#no-webhooks")).to_be_visible()
    await checked(page, "empty")

    await page.get_by_label("Adresse HTTPS").fill(HOOK_URL)
    await page.get_by_label("Description").fill("ENT du lycée")
    await page.get_by_label("Facture émise").check()
    await page.get_by_label("Jetons crédités").check()
    await page.get_by_role("button", name="Ajouter le webhook").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Secret du webhook")
    secret = (await page.locator("#webhook-secret").inner_text()).strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{20,}", secret), secret
    await expect(page.locator("#webhook-secret-notice")).to_contain_text("il ne sera plus jamais affiché")
    assert secret not in page.url
    assert all(secret not in cookie["value"] for cookie in await page.context.cookies())
    await checked(page, "secret")

    await page.get_by_role("link", name="J'ai copié le secret : voir le webhook").click()
    await page.wait_for_url("**/account/webhooks/*")
    await expect(page.locator("#webhook-url")).to_have_text(HOOK_URL)
    assert secret not in await page.content()

    await page.get_by_role("link", name="Tous les webhooks").click()
    await page.wait_for_url("**/account/webhooks")
    row = page.locator("#webhooks-table tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.first).to_have_attribute("data-status", "active")
    await expect(row.first).to_contain_text("Facture émise")
    await expect(row.first).to_contain_text("Jetons crédités")
    assert secret not in await page.content()
    await checked(page, "list")

    await row.first.get_by_role("link", name=HOOK_URL, exact=True).click()
    await page.wait_for_url("**/account/webhooks/*")
    await expect(page.locator("#no-deliveries")).to_be_visible()
    await page.get_by_role("button", name="Envoyer un événement de test").click()
    await page.wait_for_url("**?done=tested")
    await expect(page.get_by_text("Événement de test envoyé", exact=False)).to_be_visible()
    ping = page.locator('#deliveries tbody tr[data-type="ping"]')
    await expect(ping).to_have_count(1)
    await expect(ping).to_contain_text("Événement de test")
    await expect(page.locator("#signature-help")).to_contain_text("Visiopass-Signature")
    await checked(page, "detail")
