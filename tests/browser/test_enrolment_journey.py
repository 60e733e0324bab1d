"""Enrolling in a real browser (Debian's Chromium driven by Playwright) against the real services: a school's
manager with no tokens opens a session's page, is told its balance is short and led to buy tokens, pays by card on
the sandbox provider's page, comes back, enrols with a question for the animator, sees the enrolment turn
confirmed in "Mes Webvisio" without reloading, opens its participation link and lands on the join page's waiting
room; an organiser then finds the enrolment and the question on the session's back-office page. axe-core checks
every page met on the way, which is also shot at desktop and phone widths."""

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from test_enrolment_pages import published_session

from api_world import grant_organiser, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots
from browser.test_billing_journeys import log_in

pytestmark = pytest.mark.infra
QUESTION = "Pouvez-vous montrer l'export des notes vers l'ENT ?"


async def checked(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshots(page, f"enrolment--{name}")
    await assert_no_horizontal_scroll(page)


async def buy_a_bundle(page: Page) -> None:
    """From "Achat de jetons": one bundle paid by card on the sandbox's page, until the order says paid."""
    await page.get_by_label("Quantité : Forfait 5 jetons + 1 offert").fill("1")
    await page.get_by_role("button", name="Mettre à jour").click()
    await page.get_by_role("button", name="Payer par carte").click()
    await page.wait_for_url("**/payments/sandbox/**")
    await page.get_by_role("button", name="Payer", exact=True).click()
    await page.wait_for_url("**/account/orders/*?paid=1")
    confirmed = page.get_by_text("Paiement reçu : 6 jetons ont été ajoutés à votre solde.", exact=False)
    for _ in range(20):  # the webhook is handled before the sandbox answers; on a busy machine, the reload link
        if await confirmed.count():
            break
        await page.get_by_role("link", name="Actualiser la page").click()
    await expect(confirmed).to_be_visible()


async def test_a_school_without_tokens_buys_some_enrols_and_opens_its_join_page(new_context, system, stack) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "browser-enrolling", verified_with=stack.mail_api)
        organiser = await sign_up(gateway, "browser-enrolment-organiser", verified_with=stack.mail_api)
    await grant_organiser(system, organiser.email)
    session_id = await published_session(system, datetime.now(UTC) + timedelta(days=5), capacity=20)

    page = await (await new_context()).new_page()
    await log_in(page, manager.email)
    await page.goto(f"/planning/sessions/{session_id}")
    await expect(page.locator("#enrol-no-tokens")).to_be_visible()
    await checked(page, "session-no-tokens")
    await page.locator("#buy-tokens").click()
    await page.wait_for_url("**/account/tokens")
    await buy_a_bundle(page)

    await page.goto(f"/planning/sessions/{session_id}")
    await expect(page.locator("#enrol-balance")).to_contain_text("6 jetons")
    await expect(page.locator("#enrol-no-tokens")).to_have_count(0)
    await page.get_by_label("Nombre de participants attendus").fill("12")
    await page.get_by_label("Vos questions pour l'animateur ou l'animatrice").fill(QUESTION)
    await checked(page, "session-enrol")
    await page.get_by_role("button", name="S'inscrire").click()
    await page.wait_for_url("**/account/webvisio?done=requested&enrolment=*")
    row = page.locator("#upcoming tbody tr").first
    await expect(row).to_have_attribute("data-status", "confirmed")  # portal.js refreshes while pending
    await expect(row.get_by_role("button", name="Accès")).to_be_disabled()  # opens 15 minutes before the start
    await checked(page, "webvisio")

    await row.locator("a.enrolment-details").click()
    await page.wait_for_url("**/account/webvisio/*")
    link = page.locator("#link .copy-link a.secret")
    await expect(link).to_have_attribute("href", re.compile(r"^/join/[A-Za-z0-9_-]{43}$"))
    await checked(page, "enrolment")
    await link.click()
    await page.wait_for_url("**/join/*")
    await expect(page.locator("#session-when")).to_have_attribute("data-state", "waiting")
    await expect(page.locator("#opens-at")).to_be_visible()
    await expect(page.locator("#dial-in")).to_contain_text("PIN")
    await checked(page, "join-waiting")

    back_office = await (await new_context()).new_page()
    await log_in(back_office, organiser.email)
    await back_office.goto(f"/back-office/sessions/{session_id}")
    question = back_office.locator(".enrolment-questions", has_text=QUESTION)
    await expect(question).to_be_visible()
    await checked(back_office, "back-office-session")
