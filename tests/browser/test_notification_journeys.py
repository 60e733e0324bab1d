"""Reminders in a real browser (Debian's Chromium driven by Playwright) against the real services: a manager opens
the unsubscribe link of a reminder mail, logged out, reads what stops and what goes on, and confirms; then logs in
and turns reminders back on in "Mon compte" > Notifications. axe-core checks every page met on the way."""

import httpx
import pytest
from playwright.async_api import Page, expect
from test_preferences_and_bounces import REMINDER_SUBJECT, remind

from api_world import PASSWORD, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots
from mail import links_in, wait_for_mail

pytestmark = pytest.mark.infra


async def checked(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshots(page, f"notifications--{name}")
    await assert_no_horizontal_scroll(page)


async def test_a_manager_unsubscribes_from_a_reminder_then_turns_reminders_back_on(new_context, system, stack) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        manager = await sign_up(gateway, "browser-reminded", verified_with=stack.mail_api)
    await remind(system, manager)
    mail = await wait_for_mail(stack.mail_api, manager.email, subject_contains=REMINDER_SUBJECT)
    [link] = [link for link in links_in(mail["text"]) if "/unsubscribe/" in link]

    page = await (await new_context()).new_page()
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ne plus recevoir les rappels")
    await expect(page.get_by_text("Les e-mails indispensables continuent", exact=False)).to_be_visible()
    await checked(page, "unsubscribe")
    await page.get_by_role("main").get_by_role("button", name="Ne plus recevoir les rappels").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("C'est noté : plus de rappels")
    await checked(page, "unsubscribed")

    await page.goto("/login")
    await page.get_by_label("Adresse e-mail", exact=True).fill(manager.email)
    await page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    await page.get_by_role("main").get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#person-name")).to_have_text("Camille Martin")
    await page.get_by_role("navigation", name="Mon compte").get_by_role("link", name="Notifications").click()
    await page.wait_for_url("**/account/notifications")
    reminders = page.get_by_label("Recevoir les rappels", exact=False)
    await expect(reminders).not_to_be_checked()  # the link's choice
    await checked(page, "preferences")
    await reminders.check()
    await page.get_by_role("main").get_by_role("button", name="Enregistrer").click()
    await page.wait_for_url("**/account/notifications?done=saved")
    await expect(page.get_by_text("Votre choix est enregistré.")).to_be_visible()
    await expect(page.get_by_label("Recevoir les rappels", exact=False)).to_be_checked()
