"""Every page of the portal, as the person it is for: a screenshot at desktop (1280x800) and phone (375x740)
widths in `.run/test-artefacts/screenshots/`, no sideways scrolling at 320 px, and no serious or critical
axe-core violation.

"Every page" is the gateway's route table (read from its app, as tests/test_authorisation_matrix.py does): each
GET route outside the JSON API, the OpenAPI pages, the static files and the health checks must have an entry in
PAGES (how to open it) or SKIPPED (why not); a page added without one fails here, and so does an entry whose
route is gone."""

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from billing_world import PACK_5, UNIT, card_order, paid_order
from join_world import certificate_feedback_path, link_token
from playwright.async_api import Browser, Page

from api_world import grant_organiser, log_in, make_world, sign_up
from browser.checks import DESKTOP, assert_accessible, assert_no_horizontal_scroll, screenshots
from notifier.preferences import UnsubscribeLinks

NOT_PAGES = ("/api/", "/schema", "/static/", "/health/")
# What a mailed link carries; the GET of these pages only shows a form with it (the POST consumes a token).
LINK_TOKEN = "vLq3dQ0p2Yx7sWm1eKc9uRt5aZb8nHf4gJ6oPiUyTrE"


@dataclass(frozen=True)
class Visit:
    url: str  # with its path parameters as {names} of the scene (scene_values)
    who: str = "anonymous"  # anonymous | manager | organiser


PAGES = {
    "/": Visit("/"),
    "/help": Visit("/help"),
    "/signup": Visit("/signup"),
    "/login": Visit("/login"),
    "/verification/resend": Visit("/verification/resend"),
    "/forgot-password": Visit("/forgot-password"),
    "/verify-email": Visit(f"/verify-email?token={LINK_TOKEN}"),
    "/reset-password": Visit(f"/reset-password?token={LINK_TOKEN}"),
    "/accept-invitation": Visit(f"/accept-invitation?token={LINK_TOKEN}"),
    "/join": Visit(f"/join?token={LINK_TOKEN}"),
    "/confirm-email": Visit(f"/confirm-email?token={LINK_TOKEN}"),
    "/revert-email": Visit(f"/revert-email?token={LINK_TOKEN}"),
    "/account-closed": Visit("/account-closed"),
    "/account": Visit("/account", "manager"),
    "/account/information": Visit("/account/information", "manager"),
    "/account/me": Visit("/account/me", "manager"),
    "/account/members": Visit("/account/members", "manager"),
    "/account/privacy": Visit("/account/privacy", "manager"),
    "/account/notifications": Visit("/account/notifications", "manager"),
    "/unsubscribe/{token:str}": Visit("/unsubscribe/{unsubscribe_token}"),
    "/account/webhooks": Visit("/account/webhooks", "manager"),
    "/account/webhooks/{webhook_id:uuid}": Visit("/account/webhooks/{webhook_id}", "manager"),
    "/account/tokens": Visit("/account/tokens", "manager"),
    "/account/tokens/history": Visit("/account/tokens/history", "manager"),
    "/account/orders": Visit("/account/orders", "manager"),
    "/account/orders/{order_id:uuid}": Visit("/account/orders/{order_id}?paid=1", "manager"),
    "/account/invoices": Visit("/account/invoices", "manager"),
    "/account/webvisio": Visit("/account/webvisio", "manager"),
    "/account/webvisio/{enrollment_id:uuid}": Visit("/account/webvisio/{enrollment_id}", "manager"),
    "/payments/sandbox/{checkout_id:str}": Visit("/payments/sandbox/{checkout_id}"),
    "/back-office/organisers": Visit("/back-office/organisers", "organiser"),
    "/back-office/deliveries": Visit("/back-office/deliveries", "organiser"),
    "/back-office/price-list": Visit("/back-office/price-list", "organiser"),
    "/back-office/purchase-orders": Visit("/back-office/purchase-orders", "organiser"),
    "/back-office/payments": Visit("/back-office/payments", "organiser"),
    "/back-office/invoices": Visit("/back-office/invoices", "organiser"),
    "/back-office/revenue": Visit("/back-office/revenue", "organiser"),
    "/back-office/statistics": Visit("/back-office/statistics", "organiser"),
    "/planning": Visit("/planning"),
    "/planning/sessions/{session_id:uuid}": Visit("/planning/sessions/{session_id}"),
    "/rooms/{link_token:str}": Visit("/rooms/{link_token}"),
    "/join/{token:str}": Visit("/join/{join_token}"),  # the waiting page of a confirmed enrolment's link
    "/feedback/{token:str}": Visit("{feedback_path}"),  # a certificate's feedback link (a session that took place)
    "/certificates/verify": Visit("/certificates/verify"),
    "/back-office/themes": Visit("/back-office/themes", "organiser"),
    "/back-office/themes/new": Visit("/back-office/themes/new", "organiser"),
    "/back-office/themes/{theme_id:uuid}": Visit("/back-office/themes/{theme_id}", "organiser"),
    "/back-office/sessions": Visit("/back-office/sessions", "organiser"),
    "/back-office/sessions/calendar": Visit("/back-office/sessions/calendar", "organiser"),
    "/back-office/sessions/new": Visit("/back-office/sessions/new", "organiser"),
    "/back-office/sessions/{session_id:uuid}": Visit("/back-office/sessions/{draft_id}", "organiser"),
    "/back-office/sessions/{session_id:uuid}/edit": Visit("/back-office/sessions/{draft_id}/edit", "organiser"),
    "/back-office/sessions/{session_id:uuid}/reschedule": Visit(
        "/back-office/sessions/{session_id}/reschedule", "organiser"
    ),
    "/back-office/sessions/{session_id:uuid}/cancel": Visit("/back-office/sessions/{session_id}/cancel", "organiser"),
    "/back-office/series": Visit("/back-office/series", "organiser"),
    "/back-office/series/new": Visit("/back-office/series/new", "organiser"),
    "/back-office/series/{series_id:uuid}": Visit("/back-office/series/{series_id}", "organiser"),
    "/back-office/series/{series_id:uuid}/edit": Visit("/back-office/series/{series_id}/edit", "organiser"),
    "/back-office/series/{series_id:uuid}/cancel": Visit("/back-office/series/{series_id}/cancel", "organiser"),
    "/back-office/rooms": Visit("/back-office/rooms", "organiser"),
}
SKIPPED = {
    "/back-office": "redirects (303) to /back-office/organisers, which is visited",
    "/account/privacy/export": "a JSON file to download (the GDPR export), not a page",
    "/account/invoices/{file_name:str}": "a PDF to download (an invoice or credit note)",
    "/back-office/purchase-orders/{order_id:uuid}/signed-order": "a PDF to download (the signed purchase order)",
    "/back-office/invoices/{document_id:uuid}/pdf": "a PDF to download (an invoice or credit note)",
    "/back-office/invoices.csv": "a CSV file to download (the accountant's export)",
    "/back-office/statistics.csv": "a CSV file to download (the statistics per session)",
    "/account/webvisio/{enrollment_id:uuid}/certificates/{certificate_id:uuid}/pdf": "a PDF to download",
    "/planning.ics": "an iCalendar feed to subscribe to, not a page",
    "/hooks/rooms/{session_id:uuid}/ended": "BigBlueButton's signed end callback (204), not a page",
    "/planning/sessions/{session_id:uuid}/calendar.ics": "an iCalendar file to download (one session)",
}


def portal_pages() -> set[str]:
    """The path of every GET route of the gateway that is not the JSON API, OpenAPI, a static file or health."""
    from gateway.main import app

    return {
        route.path
        for route in app.routes
        if "GET" in getattr(route, "methods", ()) and not route.path.startswith(NOT_PAGES)
    }


def test_every_page_is_visited_or_knowingly_skipped() -> None:
    served = portal_pages()
    assert not set(PAGES) & set(SKIPPED), "a page is both visited and skipped"
    unlisted = sorted(served - set(PAGES) - set(SKIPPED))
    assert not unlisted, f"pages with no entry in PAGES (how to open them) or SKIPPED (why not): {unlisted}"
    gone = sorted((set(PAGES) | set(SKIPPED)) - served)
    assert not gone, f"entries whose route the gateway no longer serves: {gone}"


@pytest.fixture(scope="module")
async def signed_in(browser: Browser, axe_script: Path, system: Any, stack: Any) -> Any:
    """A browser context per kind of visitor (a verified manager whose account has a member, an organiser) and
    the values the page paths need. The web session cookie is the API's session token (gateway.web)."""
    base = system.url("gateway")
    async with httpx.AsyncClient(base_url=base, timeout=15) as gateway:
        world = await make_world(gateway, stack.mail_api, "browser-pages")
        organiser = await sign_up(gateway, "browser-organiser")
        await grant_organiser(system, organiser.email)
        organiser_auth = await log_in(gateway, organiser.email)
        # an order paid by card (its page, its invoice listed) and one awaiting its payment (the sandbox's page)
        paid = await paid_order(base, world.auth, world.account_id, PACK_5)
        awaiting = await card_order(gateway, world.auth, world.account_id, UNIT)
        catalogue = await catalogue_values(gateway, organiser_auth)
        webhook = await gateway.post(
            f"/api/v1/accounts/{world.account_id}/webhooks",
            json={"url": "https://hooks.example.com/pages", "events": ["invoice.issued"], "description": "ENT"},
            headers=world.auth,
        )
        assert webhook.status_code == 201, webhook.text
    values = world.path_values() | {"order_id": paid["id"], "checkout_id": awaiting["checkout_url"].rsplit("/", 1)[1]}
    values |= catalogue
    values["webhook_id"] = webhook.json()["id"]
    async with httpx.AsyncClient(base_url=base, timeout=15) as gateway:
        values["enrollment_id"] = await enrolment_of(gateway, world.auth, world.account_id, catalogue["session_id"])
    values["unsubscribe_token"] = UnsubscribeLinks(system.unsubscribe_key, base).token(uuid.uuid4())
    values["join_token"] = await link_token(system, world.account_id, values["enrollment_id"])
    values["feedback_path"] = await certificate_feedback_path(system, world)
    tokens = {
        "manager": world.auth["Authorization"].removeprefix("Bearer "),
        "organiser": organiser_auth["Authorization"].removeprefix("Bearer "),
    }
    contexts = {}
    for who in ("anonymous", "manager", "organiser"):
        context = await browser.new_context(base_url=base, viewport=DESKTOP)
        await context.add_init_script(path=str(axe_script))
        if who in tokens:
            await context.add_cookies([{"name": "vp_session", "value": tokens[who], "url": base}])
        contexts[who] = context
    pages = {who: await context.new_page() for who, context in contexts.items()}
    yield pages, values
    for context in contexts.values():
        await context.close()


async def catalogue_values(gateway: httpx.AsyncClient, organiser: dict[str, str]) -> dict[str, str]:
    """A theme, a published session and a draft, a weekly series, a permanent room: made as an organiser would."""

    async def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await gateway.post(f"/api/v1/back-office/{path}", json=body, headers=organiser)
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    start = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT10:00")
    theme = await made("themes", {"title": "Pronote", "description": "Prise en main", "audience": "Lycées"})
    session = {"theme_id": theme["id"], "title": "Prise en main", "local_start": start, "animator": "Claire"}
    published = await made("sessions", session)
    await made(f"sessions/{published['id']}/publish", {})
    draft = await made("sessions", session | {"title": "Brouillon"})
    series = await made(
        "series",
        {
            "theme_id": theme["id"],
            "recurrence": {"frequency": "weekly", "weekdays": ["TU"], "count": 4},
            "local_start": start,
            "template": {"title": "Hebdomadaire"},
        },
    )
    room = await made("rooms", {"name": "Support", "description": "Aide à la demande"})
    return {
        "theme_id": theme["id"],
        "session_id": published["id"],
        "draft_id": draft["id"],
        "series_id": series["id"],
        "link_token": room["link_token"],
    }


async def enrolment_of(gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, session_id: str) -> str:
    """The account enrolled in the published session (asked again until enrollment has its copy of the session),
    confirmed: its page then shows the participation link and the sharing form."""
    for _ in range(150):
        asked = await gateway.post(
            f"/api/v1/accounts/{account_id}/enrolments",
            json={"session_id": session_id, "expected_participants": 5},
            headers=auth,
        )
        if asked.status_code == 202:
            path = f"/api/v1/accounts/{account_id}/enrolments/{asked.json()['id']}"
            for _ in range(150):
                shown = (await gateway.get(path, headers=auth)).json()
                if shown["status"] != "pending":
                    return str(shown["id"])
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)
    raise AssertionError("the account could not enrol in the published session")


def shot_name(route: str, who: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", route.lower()).strip("-") or "home"
    return f"{slug}--{who}"


@pytest.mark.parametrize("route", sorted(PAGES))
async def test_page(route: str, signed_in: Any) -> None:
    pages, values = signed_in
    visit = PAGES[route]
    page: Page = pages[visit.who]
    url = visit.url.format(**values)
    answer = await page.goto(url)
    assert answer is not None and answer.status == 200, f"{url} as {visit.who}: {answer and answer.status}"
    assert page.url.endswith(url), f"{url} as {visit.who} went to {page.url}"
    assert await page.locator("h1").count() == 1, f"{url}: one <h1> per page"
    await assert_accessible(page)
    await screenshots(page, shot_name(route, visit.who))
    await assert_no_horizontal_scroll(page)
