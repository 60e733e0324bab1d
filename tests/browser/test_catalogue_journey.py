"""An organiser plans a weekly series and a visitor finds it, in a real browser (Debian's Chromium driven by
Playwright) against the real services: the organiser creates a theme in the back-office, then a weekly series on
it (Tuesdays and Thursdays at 14:00, Paris time), reads its occurrences, publishes them; a visitor who is not
logged in opens the planning, narrows it to the theme and the month, finds a session in the month's calendar and
opens its page. axe-core checks every page met on the way (tests/browser/checks.py)."""

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from api_world import grant_organiser, log_in, sign_up
from browser.checks import assert_accessible, assert_no_horizontal_scroll, screenshots

pytestmark = pytest.mark.infra

PARIS = ZoneInfo("Europe/Paris")


async def signed_in(new_context: Any, system: Any, auth: dict[str, str]) -> BrowserContext:
    """A browser context holding a web session (the cookie holds the API's session token: gateway.web)."""
    context: BrowserContext = await new_context()
    token = auth["Authorization"].removeprefix("Bearer ")
    await context.add_cookies([{"name": "vp_session", "value": token, "url": system.url("gateway")}])
    return context


async def test_an_organiser_publishes_a_weekly_series_and_a_visitor_finds_a_session(new_context, system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as gateway:
        person = await sign_up(gateway, "browser-catalogue-organiser")
        await grant_organiser(system, person.email)
        organiser_auth = await log_in(gateway, person.email)
    theme = f"Emploi du temps {uuid.uuid4().hex[:6]}"
    title = f"Prise en main de l'emploi du temps {uuid.uuid4().hex[:4]}"
    today = datetime.now(PARIS).date()
    first = today + timedelta(days=(1 - today.weekday()) % 7 + 14)  # a Tuesday two weeks ahead at least

    # the organiser creates the theme
    back_office = await (await signed_in(new_context, system, organiser_auth)).new_page()
    await back_office.goto("/back-office")
    await back_office.get_by_role("link", name="Thèmes", exact=True).click()
    await expect(back_office.get_by_role("heading", level=1)).to_have_text("Thèmes")
    await back_office.get_by_role("link", name="Nouveau thème").click()
    await back_office.get_by_label("Titre").fill(theme)
    await back_office.get_by_label("Description").fill("L'outil qui fait les emplois du temps de l'établissement.")
    await back_office.get_by_label("Public visé").fill("Secrétariats de collège")
    await back_office.get_by_label("Mots-clés").fill("emploi du temps, vie scolaire")
    await back_office.get_by_role("button", name="Créer le thème").click()
    await expect(back_office.get_by_text("Le thème est créé.")).to_be_visible()
    row = back_office.locator("#theme-list tr", has_text=theme)
    await expect(row).to_contain_text("actif")
    await assert_accessible(back_office)

    # then a weekly series on it, from the theme's row: the theme is chosen already
    await row.get_by_role("link", name=re.compile("Nouvelle série")).click()
    await expect(back_office.get_by_role("heading", level=1)).to_have_text("Nouvelle série")
    await expect(back_office.get_by_label("Thème")).to_have_value(re.compile(r"[0-9a-f-]{36}"))
    await assert_accessible(back_office)
    await back_office.get_by_label("Chaque semaine").check()
    await back_office.get_by_label("Mardi").check()
    await back_office.get_by_label("Jeudi").check()
    await back_office.get_by_label("Après un nombre de séances").check()
    await back_office.get_by_label("Nombre de séances", exact=True).fill("4")
    await back_office.get_by_label("Date", exact=True).fill(first.isoformat())
    await back_office.get_by_label("Heure", exact=True).fill("14:00")
    await expect(back_office.get_by_label("Fuseau horaire")).to_have_value("Europe/Paris")
    await back_office.get_by_label("Titre").fill(title)
    await back_office.get_by_label("Description").fill("Créer une semaine type, puis la publier.")
    await back_office.get_by_label("Animateur ou animatrice").fill("Claire Martin")
    await back_office.get_by_label("1 h 30").check()
    await back_office.get_by_label("Limitée à").check()
    await back_office.get_by_label("Nombre d'établissements").fill("20")
    await screenshots(back_office, "back-office--series-form")
    await back_office.get_by_role("button", name="Créer la série (brouillons)").click()

    # its occurrences, as drafts, at 14:00 on the days of the rule; then published together
    await expect(back_office.get_by_role("heading", level=1)).to_contain_text(title)
    await expect(back_office.locator("#series-rule")).to_have_text("Chaque semaine le mardi, jeudi — 4 séances")
    occurrences = back_office.locator("#occurrence-list tbody tr")
    await expect(occurrences).to_have_count(4)
    for index, day in enumerate((first, first + timedelta(days=2), first + timedelta(days=7), first + timedelta(9))):
        await expect(occurrences.nth(index)).to_have_attribute("data-local-start", f"{day.isoformat()}T14:00")
        await expect(occurrences.nth(index)).to_contain_text("Brouillon")
    await assert_accessible(back_office)
    await assert_no_horizontal_scroll(back_office)
    await screenshots(back_office, "back-office--series-drafts")
    await back_office.get_by_role("button", name="Publier les 4 séances en brouillon").click()
    await expect(back_office.get_by_text("Les séances en brouillon de la série sont publiées")).to_be_visible()
    for index in range(4):
        await expect(occurrences.nth(index)).to_contain_text("Publiée")
    first_session = await occurrences.nth(0).get_attribute("id")
    assert first_session and first_session.startswith("session-")
    session_id = first_session.removeprefix("session-")

    # the back-office calendar of that month shows it, published
    await back_office.goto(f"/back-office/sessions/calendar?month={first.strftime('%Y-%m')}")
    cell = back_office.locator(f'td[data-day="{first.isoformat()}"]')
    await expect(cell.locator(f'[data-session-id="{session_id}"]')).to_contain_text("14:00")
    await expect(cell.locator(f'[data-session-id="{session_id}"]')).to_contain_text("Publiée")
    await assert_accessible(back_office)
    await assert_no_horizontal_scroll(back_office)
    await screenshots(back_office, "back-office--sessions-calendar")

    # a visitor, not logged in, finds it in the planning: the theme and the month, then the calendar
    visitor = await (await new_context()).new_page()
    await visitor.goto("/planning")
    await visitor.get_by_role("textbox", name="Mois").fill(first.strftime("%Y-%m"))
    await visitor.get_by_label("Thème").select_option(label=theme)
    await visitor.get_by_role("button", name="Filtrer").click()
    found = visitor.locator(f'#month-grid [data-session-id="{session_id}"]')
    await expect(found).to_contain_text(title)
    await expect(found).to_contain_text("14:00")
    await expect(visitor.locator("#month-grid [data-session-id]")).to_have_count(
        sum(1 for n in (0, 2, 7, 9) if (first + timedelta(days=n)).month == first.month)
    )
    await assert_accessible(visitor)
    await found.get_by_role("link").click()

    # and opens its page
    await expect(visitor).to_have_url(re.compile(rf"/planning/sessions/{session_id}"))
    await expect(visitor.get_by_role("heading", level=1)).to_have_text(title)
    await expect(visitor.locator("#session-time")).to_contain_text("14:00")
    await expect(visitor.locator("#session-animator")).to_have_text("Claire Martin")
    await expect(visitor.locator("#session-theme")).to_have_text(theme)
    await assert_accessible(visitor)
    await screenshots(visitor, "planning--session-from-series")
