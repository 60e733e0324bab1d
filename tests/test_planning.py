"""The public planning through the real services: the JSON API (`/api/v1/planning`, one session, the themes, the
iCalendar feed) and the portal's pages (the month as a calendar and as a list, with their filters, and a session's
page in the viewer's zone), for a visitor who is not signed in. The sessions are made through the catalogue's
internal API, as the back-office does, in March of next year (always ahead), under two themes of this test's own,
so that other tests' sessions never change what is asserted."""

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import vobject

pytestmark = pytest.mark.infra

PARIS = ZoneInfo("Europe/Paris")


def problem(answer: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    body: dict[str, Any] = answer.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


class World:
    """Two themes and their sessions in March of next year (`month`), by name: A (16th, 14:00, 90 min, 12
    places, privatisable), F (20th, 01:30: the 19th in Cayenne), G (31st, 14:00, summer time), E (25th, cancelled),
    C (18th, a draft) under theme one; B (23rd) under theme two."""

    def __init__(self, system: Any) -> None:
        self.catalogue = httpx.AsyncClient(
            base_url=system.url("catalogue"),
            headers={"X-Internal-Token": system.internal_token, "X-Actor-Id": str(uuid.uuid4())},
            timeout=30,
        )
        self.tag = uuid.uuid4().hex[:8]
        self.year = datetime.now(UTC).year + 1
        self.month = f"{self.year}-03"
        self.word = f"mot{self.tag}"  # a word only session A says
        self.sessions: dict[str, dict[str, Any]] = {}
        self.themes: dict[str, dict[str, Any]] = {}

    async def make(self) -> None:
        self.themes["one"] = await self._post(
            "/internal/back-office/themes",
            {"title": f"Pronote {self.tag}", "description": "Le logiciel de vie scolaire.", "audience": "Direction"},
        )
        self.themes["two"] = await self._post(
            "/internal/back-office/themes",
            {"title": f"EDT {self.tag}", "description": "Les emplois du temps.", "audience": f"Public {self.tag}"},
        )
        one, two = self.themes["one"]["id"], self.themes["two"]["id"]
        await self._session("A", one, "16T14:00", title=f"Cahier de textes {self.word}", duration_minutes=90,
                            capacity=12, premium_price_tokens=5, animator="Nadia Benali",
                            agenda="1. Saisie\n2. Consultation")  # fmt: skip
        await self._session("F", one, "20T01:30", title="Session de nuit")
        await self._session("G", one, "31T14:00", title="Session de printemps")
        await self._session("E", one, "25T10:00", title="Session annulée")
        await self._session("C", one, "18T10:00", title="Session en brouillon", publish=False)
        await self._session("B", two, "23T10:00", title="Emplois du temps")
        cancelled = await self.catalogue.post(
            f"/internal/back-office/sessions/{self.sessions['E']['id']}/cancel", json={"reason": "Animatrice absente"}
        )
        assert cancelled.status_code == 200, cancelled.text

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.catalogue.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        made: dict[str, Any] = answer.json()
        return made

    async def _session(self, name: str, theme_id: str, day_time: str, publish: bool = True, **terms: Any) -> None:
        body = {"theme_id": theme_id, "local_start": f"{self.month}-{day_time}", "timezone": "Europe/Paris"} | terms
        made = await self._post("/internal/back-office/sessions", body)
        if publish:
            made = await self._post(f"/internal/back-office/sessions/{made['id']}/publish", {})
        self.sessions[name] = made

    def id(self, name: str) -> str:
        return str(self.sessions[name]["id"])

    def names(self, items: list[dict[str, Any]]) -> set[str]:
        ids = {item["id"] for item in items}
        return {name for name, made in self.sessions.items() if made["id"] in ids}

    def start(self, name: str) -> datetime:
        return datetime.fromisoformat(self.sessions[name]["starts_at"])


@pytest.fixture(scope="module")
async def world(system) -> World:
    made = World(system)
    await made.make()
    return made


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


def cell(page: str, day: str) -> str:
    """The calendar's cell of a day (YYYY-MM-DD)."""
    found = re.search(rf'<td[^>]*data-date="{day}"[^>]*>(.*?)</td>', page, re.DOTALL)
    assert found, f"no cell for {day}"
    return found.group(1)


# -- the JSON API -------------------------------------------------------------------------------------------------


async def test_the_api_lists_a_month_of_published_sessions_soonest_first_with_its_filters(gateway, world) -> None:
    one, two = world.themes["one"]["id"], world.themes["two"]["id"]
    listed = await gateway.get("/api/v1/planning", params={"month": world.month, "theme_id": one})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [item["id"] for item in body["items"]] == [world.id(name) for name in ("A", "F", "E", "G")]  # no draft
    assert (body["total"], body["offset"]) == (4, 0)
    [cancelled] = [item for item in body["items"] if item["id"] == world.id("E")]
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "Animatrice absente")
    searched = await gateway.get("/api/v1/planning", params={"month": world.month, "q": world.word})
    assert world.names(searched.json()["items"]) == {"A"}
    available = await gateway.get(
        "/api/v1/planning", params={"month": world.month, "theme_id": one, "available": "true"}
    )
    assert world.names(available.json()["items"]) == {"A", "F", "G"}  # the cancelled one has no place to take
    by_audience = await gateway.get(
        "/api/v1/planning", params={"month": world.month, "audience": f"Public {world.tag}"}
    )
    assert world.names(by_audience.json()["items"]) == {"B"}
    by_theme = await gateway.get("/api/v1/planning", params={"month": world.month, "theme_id": two})
    assert world.names(by_theme.json()["items"]) == {"B"}
    other_month = await gateway.get("/api/v1/planning", params={"month": f"{world.year}-04", "theme_id": one})
    assert other_month.json()["items"] == []


async def test_the_api_pages_the_planning_with_links(gateway, world) -> None:
    query = {"month": world.month, "theme_id": world.themes["one"]["id"], "limit": "3"}
    first = await gateway.get("/api/v1/planning", params=query)
    assert (len(first.json()["items"]), first.json()["total"]) == (3, 4)
    assert 'rel="next"' in first.headers["link"] and "offset=3" in first.headers["link"]
    second = await gateway.get("/api/v1/planning", params=query | {"offset": "3"})
    assert [item["id"] for item in second.json()["items"]] == [world.id("G")]
    assert 'rel="prev"' in second.headers["link"]


async def test_one_session_is_readable_by_anyone_but_not_a_draft(gateway, world) -> None:
    answer = await gateway.get(f"/api/v1/planning/sessions/{world.id('A')}")
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert session["title"] == f"Cahier de textes {world.word}"
    assert (session["timezone"], session["local_start"], session["local_end"]) == (
        "Europe/Paris",
        f"{world.month}-16T14:00",
        f"{world.month}-16T15:30",
    )
    assert (session["capacity"], session["places_left"], session["premium"]) == (12, 12, True)
    assert problem(await gateway.get(f"/api/v1/planning/sessions/{world.id('C')}"), 404)["code"] == "not_found"
    assert problem(await gateway.get(f"/api/v1/planning/sessions/{uuid.uuid4()}"), 404)["code"] == "not_found"


async def test_the_themes_are_listed_with_their_sessions_to_come(gateway, world) -> None:
    answer = await gateway.get("/api/v1/themes")
    assert answer.status_code == 200, answer.text
    themes = {theme["id"]: theme for theme in answer.json()["items"]}
    assert themes[world.themes["one"]["id"]]["session_count"] == 3  # A, F, G: published and to come
    assert themes[world.themes["two"]["id"]]["audience"] == f"Public {world.tag}"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"month": "2027-13"}, "month"),
        ({"month": "27-03"}, "month"),
        ({"month": "1999-12"}, "month"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"tz": "localtime"}, "tz"),
        ({"theme_id": "not-a-uuid"}, "theme_id"),
        ({"q": "mot\x00clé"}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"audience": "\x1b[2J"}, "audience"),
        ({"available": "maybe"}, "available"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(2**70)}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
async def test_bad_input_to_the_planning_is_a_400_problem_naming_it(gateway, world, query, field) -> None:
    refused = problem(await gateway.get("/api/v1/planning", params=query), 400, field)
    assert refused["code"] in ("invalid_request", "unknown_time_zone")


async def test_the_feed_is_an_icalendar_of_the_same_instants_as_the_api(gateway, world) -> None:
    theme_id = world.themes["one"]["id"]
    feed = await gateway.get("/api/v1/planning.ics", params={"theme_id": theme_id})
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    events = {event.uid.value: event for event in vobject.readOne(feed.text).vevent_list}
    listed = (await gateway.get("/api/v1/planning", params={"month": world.month, "theme_id": theme_id})).json()
    assert set(events) == {f"{item['id']}@visiopass" for item in listed["items"]}
    for item in listed["items"]:
        event = events[f"{item['id']}@visiopass"]
        assert event.dtstart.value.astimezone(UTC) == datetime.fromisoformat(item["starts_at"])
        assert event.dtend.value.astimezone(UTC) == datetime.fromisoformat(item["ends_at"])
        assert event.dtstart.value.strftime("%Y-%m-%dT%H:%M") == item["local_start"]  # by the feed's VTIMEZONE
        assert event.status.value == ("CANCELLED" if item["status"] == "cancelled" else "CONFIRMED")
    assert world.start("A").hour == 13 and world.start("G").hour == 12  # winter, then summer time: both at 14:00
    portal_feed = await gateway.get("/planning.ics", params={"theme_id": theme_id})
    assert portal_feed.status_code == 200 and set(events) <= {
        event.uid.value for event in vobject.readOne(portal_feed.text).vevent_list
    }


# -- the pages ----------------------------------------------------------------------------------------------------


async def test_the_month_calendar_shows_each_session_on_its_day(gateway, world) -> None:
    page = await gateway.get("/planning", params={"month": world.month, "theme_id": world.themes["one"]["id"]})
    assert page.status_code == 200, page.text
    assert '<table class="month-grid"' in page.text and "Europe/Paris" in page.text
    a_day = cell(page.text, f"{world.month}-16")
    assert world.id("A") in a_day and "14:00" in a_day and f"Cahier de textes {world.word}" in a_day
    assert world.id("F") in cell(page.text, f"{world.month}-20")
    cancelled = cell(page.text, f"{world.month}-25")
    assert world.id("E") in cancelled and "Annulée" in cancelled
    assert world.id("C") not in page.text  # a draft
    assert world.id("B") not in page.text  # another theme
    assert f"month={world.year}-02" in page.text and f"month={world.year}-04" in page.text  # the months around


async def test_the_calendar_follows_the_viewers_zone(gateway, world) -> None:
    query = {"month": world.month, "theme_id": world.themes["one"]["id"], "tz": "America/Cayenne"}
    page = await gateway.get("/planning", params=query)
    assert page.status_code == 200, page.text
    assert "10:00" in cell(page.text, f"{world.month}-16")  # 14:00 in Paris
    assert world.id("F") in cell(page.text, f"{world.month}-19") and "21:30" in cell(page.text, f"{world.month}-19")
    assert world.id("F") not in cell(page.text, f"{world.month}-20")
    assert f"/planning/sessions/{world.id('A')}?tz=America%2FCayenne" in page.text  # the session page keeps it


async def test_the_filters_and_the_list_of_the_planning_page(gateway, world) -> None:
    searched = await gateway.get("/planning", params={"month": world.month, "q": world.word})
    assert world.id("A") in searched.text and world.id("F") not in searched.text
    available = await gateway.get(
        "/planning", params={"month": world.month, "theme_id": world.themes["one"]["id"], "available": "1"}
    )
    assert world.id("A") in available.text and world.id("E") not in available.text
    assert 'id="field-available" name="available" type="checkbox" value="1" checked' in available.text
    audience = await gateway.get("/planning", params={"month": world.month, "audience": f"Public {world.tag}"})
    assert world.id("B") in audience.text and world.id("A") not in audience.text
    listed = await gateway.get(
        "/planning", params={"month": world.month, "theme_id": world.themes["one"]["id"], "view": "list"}
    )
    assert listed.status_code == 200 and 'id="session-list"' in listed.text and "month-grid" not in listed.text
    order = [listed.text.index(world.id(name)) for name in ("A", "F", "E", "G")]
    assert order == sorted(order)  # soonest first


@pytest.mark.parametrize("query", [{"month": "2027-13"}, {"tz": "Mars/Olympus_Mons"}, {"theme_id": "nope"}])
async def test_a_wrong_filter_is_shown_next_to_its_field(gateway, query) -> None:
    page = await gateway.get("/planning", params=query)
    assert page.status_code == 400
    assert 'class="error-summary"' in page.text and 'aria-invalid="true"' in page.text


async def test_the_session_page_in_paris_and_in_the_viewers_zone(gateway, world) -> None:
    page = await gateway.get(f"/planning/sessions/{world.id('A')}")
    assert page.status_code == 200, page.text
    text = page.text
    assert f"Cahier de textes {world.word}" in text and f"Pronote {world.tag}" in text
    assert re.search(r'id="session-time">14:00 \u2013 15:30 <span class="zone">heure de Europe/Paris', text)
    assert 'id="session-own-time"' not in text  # the viewer's zone is the session's
    assert "1 h 30" in text and "Nadia Benali" in text and "12 places restantes" in text
    assert "5 jetons" in text and "1. Saisie" in text
    assert f'href="/planning/sessions/{world.id("A")}/calendar.ics"' in text and 'href="/planning.ics"' in text
    assert 'id="enrol-login"' in text and "Connectez-vous pour inscrire votre établissement" in text  # a visitor
    elsewhere = await gateway.get(f"/planning/sessions/{world.id('A')}", params={"tz": "America/Cayenne"})
    assert re.search(
        r'id="session-time">10:00 \u2013 11:30 <span class="zone">heure de America/Cayenne', elsewhere.text
    )
    assert re.search(
        r'id="session-own-time">[^<]*14:00 \u2013 15:30 <span class="zone">heure de Europe/Paris', elsewhere.text
    )


async def test_a_cancelled_session_says_so_and_a_draft_or_unknown_one_is_not_found(gateway, world) -> None:
    cancelled = await gateway.get(f"/planning/sessions/{world.id('E')}")
    assert cancelled.status_code == 200 and 'id="cancelled-banner"' in cancelled.text
    assert "Animatrice absente" in cancelled.text
    assert (await gateway.get(f"/planning/sessions/{world.id('C')}")).status_code == 404
    assert (await gateway.get(f"/planning/sessions/{uuid.uuid4()}")).status_code == 404
    assert (await gateway.get("/planning/sessions/not-a-session")).status_code in (400, 404)
    assert (await gateway.get(f"/planning/sessions/{world.id('C')}/calendar.ics")).status_code == 404


async def test_a_session_added_to_ones_calendar_is_that_session_alone(gateway, world) -> None:
    answer = await gateway.get(f"/planning/sessions/{world.id('A')}/calendar.ics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment;")
    calendar = vobject.readOne(answer.text)
    [event] = calendar.vevent_list
    assert event.uid.value == f"{world.id('A')}@visiopass"
    assert event.dtstart.value.astimezone(UTC) == world.start("A")
    assert event.dtstart.value.astimezone(PARIS).strftime("%H:%M") == "14:00"


async def test_without_the_catalogue_the_planning_says_it_is_unavailable(system, gateway, world) -> None:
    await asyncio.to_thread(system.stop, names=("catalogue",))
    try:
        refused = problem(await gateway.get("/api/v1/planning"), 503)
        assert refused["code"] == "upstream_unavailable"
        page = await gateway.get("/planning")
        assert page.status_code == 503 and 'id="planning-unavailable"' in page.text
        session = await gateway.get(f"/planning/sessions/{world.id('A')}")
        assert session.status_code == 503 and 'id="session-unavailable"' in session.text
    finally:
        await asyncio.to_thread(system.start, ("catalogue",))
