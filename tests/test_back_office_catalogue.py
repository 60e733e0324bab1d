"""The organisers' catalogue editor, through the gateway (its pages' forms and its JSON API) against the real
catalogue, accounts, PostgreSQL and Kafka: a theme and a session are created, refused with what to fix (a time the
clocks skip, a start already past, an unknown zone) while the form keeps what was typed, published, rescheduled and
cancelled behind a confirmation; a weekly series lists its occurrences at the same wall clock across the change to
summer time and publishes them all; a permanent room opens, lets people in by its link and closes; the animator
joins a session's room, and an organiser a permanent room, as moderator. Nobody but organisers sees any of it (404
on the pages, 403 on the API), and bad input to every organiser route is refused at the edge and changes nothing."""

import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import jwt
import pytest
import test_bad_input as bad_input
from portal_world import portal_login, submit

from api_world import Manager, grant_organiser, log_in, sign_up

pytestmark = pytest.mark.infra

PARIS = ZoneInfo("Europe/Paris")
API = "/api/v1/back-office"
CATALOGUE_TABLES = ("themes", "sessions", "series", "permanent_rooms", "schedule", "outbox")


@pytest.fixture
async def gateway(system):
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def organiser_person(system) -> Manager:
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        person = await sign_up(client, "catalogue-organiser")
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


# -- days to plan on: always ahead of today, whatever today is -------------------------------------------------------


def today() -> date:
    return datetime.now(PARIS).date()


def next_weekday(after: date, weekday: int) -> date:
    """The first day after `after` that is `weekday` (0: Monday)."""
    return after + timedelta(days=(weekday - after.weekday() - 1) % 7 + 1)


def last_sunday_of_march(year: int) -> date:
    return next_weekday(date(year, 3, 24), 6)


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:6]}"


# -- the pages' forms -----------------------------------------------------------------------------------------------


async def post_form(client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    return await submit(client, page, action, fields, follow_redirects=False)


def session_form(theme_id: str, **changes: str) -> dict[str, str]:
    fields = {
        "theme_id": theme_id,
        "title": unique("Découverte de l'emploi du temps"),
        "description": "Prise en main.\nQuestions à la fin.",
        "animator": "Claire Martin",
        "local_date": (today() + timedelta(days=40)).isoformat(),
        "local_time": "14:00",
        "timezone": "Europe/Paris",
        "duration": "90",
        "capacity_mode": "limited",
        "capacity": "12",
        "price_tokens": "2",
        "premium": "on",
        "premium_price_tokens": "10",
        "access": "open",
        "waiting_message": "La séance commence bientôt.",
        "agenda": "1. Présentation\n2. Exercices",
        "provider": "",
    }
    return fields | changes


def error_of(html: str, field: str) -> str:
    """The error shown next to a field (macros.html: `error-<field>`)."""
    found = re.search(rf'<p class="field-error" id="error-{field}">([^<]*)</p>', html)
    assert found, f"no error next to {field}"
    return found.group(1).replace("&#39;", "'").replace("&#34;", '"')


def location_id(response: httpx.Response, kind: str) -> str:
    assert response.status_code == 303, response.text
    found = re.fullmatch(rf"/back-office/{kind}/([0-9a-f-]{{36}})\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def a_theme(back_office: httpx.AsyncClient, gateway: httpx.AsyncClient, organiser: dict[str, str]) -> str:
    """A new theme, made through its form; its id."""
    title = unique("Emploi du temps")
    fields = {"title": title, "description": "L'outil d'emploi du temps.", "audience": "Secrétariats", "tags": "edt"}
    created = await post_form(back_office, "/back-office/themes/new", "/back-office/themes", fields)
    assert (created.status_code, created.headers["location"]) == (303, "/back-office/themes?done=created")
    listed = await gateway.get(f"{API}/themes", headers=organiser)
    [theme] = [t for t in listed.json()["items"] if t["title"] == title]
    return str(theme["id"])


async def session_of(gateway: httpx.AsyncClient, organiser: dict[str, str], session_id: str) -> dict[str, Any]:
    answer = await gateway.get(f"{API}/sessions/{session_id}", headers=organiser)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def sessions_titled(gateway: httpx.AsyncClient, organiser: dict[str, str], title: str) -> int:
    answer = await gateway.get(f"{API}/sessions", params={"q": title}, headers=organiser)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


# -- themes ---------------------------------------------------------------------------------------------------------


async def test_a_theme_is_created_edited_archived_and_restored(back_office, gateway, organiser):
    refused = await post_form(back_office, "/back-office/themes/new", "/back-office/themes", {"title": "", "tags": ""})
    assert refused.status_code == 400
    assert "titre est obligatoire" in error_of(refused.text, "title")

    theme_id = await a_theme(back_office, gateway, organiser)
    page = f"/back-office/themes/{theme_id}"
    fields = {"title": unique("Vie scolaire"), "audience": "CPE", "tags": "absences, retards", "image_url": "ftp://x"}
    refused = await post_form(back_office, page, page, fields)
    assert refused.status_code == 400 and "https://" in error_of(refused.text, "image_url")
    assert 'value="absences, retards"' in refused.text  # what was typed is kept
    changed = await post_form(back_office, page, page, fields | {"image_url": "https://exemple.fr/vie.png"})
    assert changed.headers["location"] == "/back-office/themes?done=updated"
    [theme] = [
        t for t in (await gateway.get(f"{API}/themes", headers=organiser)).json()["items"] if t["id"] == theme_id
    ]
    assert (theme["title"], theme["tags"], theme["image_url"]) == (
        fields["title"],
        ["absences", "retards"],
        "https://exemple.fr/vie.png",
    )

    archived = await post_form(back_office, page, f"{page}/archive", {})
    assert archived.headers["location"] == "/back-office/themes?done=archived"
    archived_list = (await gateway.get(f"{API}/themes", params={"status": "archived"}, headers=organiser)).json()
    assert theme_id in [t["id"] for t in archived_list["items"]]
    # no session on an archived theme: said next to the theme
    refused = await post_form(back_office, "/back-office/sessions/new", "/back-office/sessions", session_form(theme_id))
    assert refused.status_code == 409 and "archivé" in error_of(refused.text, "theme_id")
    restored = await post_form(back_office, page, f"{page}/restore", {})
    assert restored.headers["location"] == "/back-office/themes?done=restored"
    listing = await back_office.get("/back-office/themes?status=active")
    assert f'id="theme-{theme_id}" data-status="active"' in listing.text


# -- sessions -------------------------------------------------------------------------------------------------------


async def test_a_session_is_created_as_a_draft_then_published(back_office, gateway, organiser):
    theme_id = await a_theme(back_office, gateway, organiser)
    fields = session_form(theme_id)
    created = await post_form(back_office, "/back-office/sessions/new", "/back-office/sessions", fields)
    session_id = location_id(created, "sessions")
    session = await session_of(gateway, organiser, session_id)
    assert session["status"] == "draft"
    assert (session["local_start"], session["timezone"], session["duration_minutes"]) == (
        f"{fields['local_date']}T14:00",
        "Europe/Paris",
        90,
    )
    assert (session["capacity"], session["price_tokens"], session["premium_price_tokens"]) == (12, 2, 10)
    assert session["agenda"] == fields["agenda"] and session["theme_id"] == theme_id

    page = await back_office.get(f"/back-office/sessions/{session_id}?done=created")
    assert page.status_code == 200 and 'data-status="draft"' in page.text
    published = await post_form(
        back_office, f"/back-office/sessions/{session_id}", f"/back-office/sessions/{session_id}/publish", {}
    )
    assert published.headers["location"] == f"/back-office/sessions/{session_id}?done=published"
    assert (await session_of(gateway, organiser, session_id))["status"] == "published"
    again = await post_form(
        back_office, f"/back-office/sessions/{session_id}", f"/back-office/sessions/{session_id}/publish", {}
    )
    assert again.status_code == 409 and "déjà publiée" in again.text

    # the calendar of its month and the filtered list show it, with its status
    month = fields["local_date"][:7]
    calendar = await back_office.get(f"/back-office/sessions/calendar?month={month}")
    assert calendar.status_code == 200
    cell = calendar.text.split(f'data-day="{fields["local_date"]}"', 1)[1].split("</td>", 1)[0]
    assert f'data-session-id="{session_id}"' in cell and "Publiée" in cell and "14:00" in cell
    listed = await back_office.get("/back-office/sessions", params={"status": "published", "theme_id": theme_id})
    assert f'id="session-{session_id}" data-status="published"' in listed.text


async def test_a_refused_session_says_what_to_fix_next_to_the_field_and_keeps_what_was_typed(
    back_office, gateway, organiser
):
    theme_id = await a_theme(back_office, gateway, organiser)
    skipped = last_sunday_of_march(today().year + 1)
    cases = [
        # 02:30 does not exist on the last Sunday of March in Paris: clocks go from 02:00 to 03:00
        ({"local_date": skipped.isoformat(), "local_time": "02:30"}, "local_start", "passent de 02:00 à 03:00"),
        ({"local_date": (today() - timedelta(days=1)).isoformat(), "local_time": "10:00"}, "local_start", "passé"),
        ({"timezone": "Mars/Olympus"}, "timezone", "fuseau horaire est inconnu"),
        ({"local_date": "le 3 mars"}, "local_start", "Une date et une heure"),
        ({"duration": "other", "duration_other": "5"}, "duration", "de 15 à 480"),
        ({"capacity": "0"}, "capacity", "de 1 à 100 000"),
        ({"access": "code"}, "entry_code", "code d'accès"),
    ]
    for changes, field, said in cases:
        fields = session_form(theme_id, **changes)
        refused = await post_form(back_office, "/back-office/sessions/new", "/back-office/sessions", fields)
        assert refused.status_code in (400, 409), (changes, refused.status_code)
        assert said in error_of(refused.text, field), (changes, error_of(refused.text, field))
        assert 'aria-invalid="true"' in refused.text and 'id="error-summary"' in refused.text, changes
        assert f'value="{fields["title"]}"' in refused.text.replace("&#39;", "'")
        assert f'value="{fields["local_time"]}"' in refused.text
        assert f'<option value="{fields["timezone"]}" selected>' in refused.text
        assert await sessions_titled(gateway, organiser, fields["title"]) == 0


async def test_reschedule_and_cancel_each_need_an_explicit_confirmation(back_office, gateway, organiser):
    theme_id = await a_theme(back_office, gateway, organiser)
    created = await post_form(back_office, "/back-office/sessions/new", "/back-office/sessions", session_form(theme_id))
    session_id = location_id(created, "sessions")
    page = f"/back-office/sessions/{session_id}"
    await post_form(back_office, page, f"{page}/publish", {})
    later = (today() + timedelta(days=50)).isoformat()
    move = {"local_date": later, "local_time": "09:30", "timezone": "Europe/Paris", "duration": "60"}

    unconfirmed = await post_form(back_office, f"{page}/reschedule", f"{page}/reschedule", move)
    assert unconfirmed.status_code == 400 and "confirmer" in error_of(unconfirmed.text, "confirm")
    assert f'value="{later}"' in unconfirmed.text
    assert (await session_of(gateway, organiser, session_id))["local_start"] != f"{later}T09:30"
    rescheduled = await post_form(back_office, f"{page}/reschedule", f"{page}/reschedule", move | {"confirm": "on"})
    assert rescheduled.headers["location"] == f"{page}?done=rescheduled"
    moved = await session_of(gateway, organiser, session_id)
    assert (moved["local_start"], moved["duration_minutes"], moved["status"]) == (f"{later}T09:30", 60, "published")

    no_reason = await post_form(back_office, f"{page}/cancel", f"{page}/cancel", {"reason": " ", "confirm": "on"})
    assert no_reason.status_code == 400 and "raison" in error_of(no_reason.text, "reason")
    unconfirmed = await post_form(back_office, f"{page}/cancel", f"{page}/cancel", {"reason": "Animatrice absente"})
    assert unconfirmed.status_code == 400 and "Animatrice absente" in unconfirmed.text
    assert (await session_of(gateway, organiser, session_id))["status"] == "published"
    cancelled = await post_form(
        back_office, f"{page}/cancel", f"{page}/cancel", {"reason": "Animatrice absente", "confirm": "on"}
    )
    assert cancelled.headers["location"] == f"{page}?done=cancelled"
    session = await session_of(gateway, organiser, session_id)
    assert (session["status"], session["cancel_reason"]) == ("cancelled", "Animatrice absente")
    # a cancelled session is frozen: the catalogue's refusal is shown
    frozen = await post_form(back_office, f"/back-office/sessions/{session_id}/edit", page, session_form(theme_id))
    assert frozen.status_code == 409 and "annulée" in frozen.text


# -- series ---------------------------------------------------------------------------------------------------------


async def test_a_weekly_series_keeps_its_wall_clock_across_summer_time_and_publishes_its_occurrences(
    back_office, gateway, organiser
):
    theme_id = await a_theme(back_office, gateway, organiser)
    change = last_sunday_of_march(today().year + 1)
    first = change - timedelta(days=5)  # the Tuesday before the clocks go forward
    fields = session_form(theme_id, local_date=first.isoformat(), local_time="14:00", duration="60") | {
        "frequency": "weekly",
        "interval": "1",
        "weekday_TU": "on",
        "weekday_TH": "on",
        "end": "count",
        "count": "4",
    }
    refused = await post_form(
        back_office, "/back-office/series/new", "/back-office/series", fields | {"weekday_TU": "", "weekday_TH": ""}
    )
    assert refused.status_code == 400 and "au moins un jour" in error_of(refused.text, "weekdays")

    created = await post_form(back_office, "/back-office/series/new", "/back-office/series", fields)
    series_id = location_id(created, "series")
    page = await back_office.get(f"/back-office/series/{series_id}?done=created")
    assert page.status_code == 200 and "Chaque semaine le mardi, jeudi — 4 séances" in page.text
    days = [first + timedelta(days=n) for n in (0, 2, 7, 9)]
    for day in days:
        assert f'data-local-start="{day.isoformat()}T14:00"' in page.text

    series = (await gateway.get(f"{API}/series/{series_id}", headers=organiser)).json()
    occurrences = series["occurrences"]
    assert [o["local_start"] for o in occurrences] == [f"{day.isoformat()}T14:00" for day in days]
    assert [o["starts_at"][11:16] for o in occurrences] == ["13:00", "13:00", "12:00", "12:00"]  # UTC moves, not Paris
    assert {o["status"] for o in occurrences} == {"draft"}

    published = await post_form(
        back_office, f"/back-office/series/{series_id}", f"/back-office/series/{series_id}/publish", {}
    )
    assert published.headers["location"] == f"/back-office/series/{series_id}?done=published"
    series = (await gateway.get(f"{API}/series/{series_id}", headers=organiser)).json()
    assert {o["status"] for o in series["occurrences"]} == {"published"}

    # one occurrence edited on its own leaves the series; the others follow a change of the template
    one = series["occurrences"][1]["id"]
    edit = f"/back-office/sessions/{one}/edit"
    detached = await post_form(
        back_office,
        edit,
        f"/back-office/sessions/{one}",
        session_form(
            theme_id, title="Séance à part", local_date=days[1].isoformat(), local_time="16:00", duration="60"
        ),
    )
    assert detached.headers["location"] == f"/back-office/sessions/{one}?done=updated"
    renamed = fields | {"title": unique("Série renommée")}
    changed = await post_form(
        back_office, f"/back-office/series/{series_id}/edit", f"/back-office/series/{series_id}", renamed
    )
    assert changed.headers["location"] == f"/back-office/series/{series_id}?done=updated"
    series = (await gateway.get(f"{API}/series/{series_id}", headers=organiser)).json()
    titles = [(o["title"], o["detached"]) for o in series["occurrences"]]
    assert titles == [
        (renamed["title"], False),
        ("Séance à part", True),
        (renamed["title"], False),
        (renamed["title"], False),
    ]

    cancel = f"/back-office/series/{series_id}/cancel"
    unconfirmed = await post_form(back_office, cancel, cancel, {"reason": "Outil retiré"})
    assert unconfirmed.status_code == 400 and 'id="error-confirm"' in unconfirmed.text
    cancelled = await post_form(back_office, cancel, cancel, {"reason": "Outil retiré", "confirm": "on"})
    assert cancelled.headers["location"] == f"/back-office/series/{series_id}?done=cancelled"
    series = (await gateway.get(f"{API}/series/{series_id}", headers=organiser)).json()
    assert {o["status"] for o in series["occurrences"]} == {"cancelled"}


async def test_a_monthly_series_on_the_last_friday(back_office, gateway, organiser):
    theme_id = await a_theme(back_office, gateway, organiser)
    start = today() + timedelta(days=35)
    fields = session_form(theme_id, local_date=start.isoformat(), local_time="10:00") | {
        "frequency": "monthly",
        "interval": "1",
        "monthly_position": "-1",
        "monthly_weekday": "FR",
        "end": "until",
        "until": (start + timedelta(days=120)).isoformat(),
    }
    series_id = location_id(
        await post_form(back_office, "/back-office/series/new", "/back-office/series", fields), "series"
    )
    series = (await gateway.get(f"{API}/series/{series_id}", headers=organiser)).json()
    assert series["recurrence"]["monthly_position"] == -1 and series["recurrence"]["weekdays"] == ["FR"]
    for occurrence in series["occurrences"]:
        day = date.fromisoformat(occurrence["local_start"][:10])
        assert day.weekday() == 4 and (day + timedelta(days=7)).month != day.month
    page = await back_office.get(f"/back-office/series/{series_id}")
    assert "Chaque mois le dernier vendredi" in page.text


# -- permanent rooms ------------------------------------------------------------------------------------------------


async def test_a_permanent_room_lets_people_in_by_its_link_until_it_is_closed(back_office, system):
    name = unique("Salle des répétitions")
    opened = await post_form(
        back_office, "/back-office/rooms", "/back-office/rooms", {"name": name, "provider": "", "entry_code": "lune42"}
    )
    assert opened.status_code == 303 and opened.headers["location"].startswith("/back-office/rooms?done=opened#room-")
    room_id = opened.headers["location"].split("#room-")[1]
    rooms = await back_office.get("/back-office/rooms")
    card = rooms.text.split(f'id="room-{room_id}"', 1)[1].split("</li>", 1)[0]
    link_token = re.search(r'data-link-token="([^"]+)"', rooms.text.split(f'id="room-{room_id}"', 1)[1]).group(1)
    assert f"/rooms/{link_token}" in card and 'class="room-pin"' in card

    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as visitor:
        shown = await visitor.get(f"/rooms/{link_token}")
        assert shown.status_code == 200 and name in shown.text and 'name="entry_code"' in shown.text
        wrong = await submit(
            visitor, f"/rooms/{link_token}", f"/rooms/{link_token}", {"name": "Léa Petit", "entry_code": "soleil"}
        )
        assert wrong.status_code == 403 and "pas le bon" in error_of(wrong.text, "entry_code")
        assert 'value="Léa Petit"' in wrong.text and "soleil" not in wrong.text
        joined = await submit(
            visitor,
            f"/rooms/{link_token}",
            f"/rooms/{link_token}",
            {"name": "Léa Petit", "entry_code": "lune42"},
            follow_redirects=False,
        )
        assert joined.status_code == 303 and joined.headers["location"].startswith("https://"), joined.text

        closed = await post_form(back_office, "/back-office/rooms", f"/back-office/rooms/{room_id}/close", {})
        assert closed.headers["location"] == "/back-office/rooms?done=closed"
        assert (await visitor.get(f"/rooms/{link_token}")).status_code == 404
        assert (await visitor.get("/rooms/not-a-room-link")).status_code == 404


# -- joining a room as its moderator ----------------------------------------------------------------------------------


def paris_in(delta: timedelta) -> datetime:
    """The wall clock in Paris `delta` from now, to the minute."""
    return (datetime.now(UTC) + delta).astimezone(PARIS).replace(second=0, microsecond=0)


async def published_at(gateway: httpx.AsyncClient, organiser: dict[str, str], start: datetime) -> str:
    """A published session (Jitsi, 60 minutes) starting at the Paris wall clock `start`; its id."""
    theme = await gateway.post(f"{API}/themes", json={"title": unique("Salle")}, headers=organiser)
    assert theme.status_code == 201, theme.text
    body = {
        "theme_id": theme.json()["id"],
        "title": unique("Séance en salle"),
        "local_start": start.strftime("%Y-%m-%dT%H:%M"),
        "timezone": "Europe/Paris",
        "provider": "jitsi",
    }
    made = await gateway.post(f"{API}/sessions", json=body, headers=organiser)
    assert made.status_code == 201, made.text
    published = await gateway.post(f"{API}/sessions/{made.json()['id']}/publish", headers=organiser)
    assert published.status_code == 200, published.text
    return str(made.json()["id"])


def jitsi_claims(system: Any, url: str) -> dict[str, Any]:
    """The claims of the Jitsi token a join URL carries, checked with the system's secret."""
    token = parse_qs(urlsplit(url).query)["jwt"][0]
    return dict(jwt.decode(token, system.room_secret, algorithms=["HS256"], audience="jitsi"))


async def test_the_animator_joins_a_session_about_to_start_as_its_moderator(system, back_office, gateway, organiser):
    session_id = await published_at(gateway, organiser, paris_in(timedelta(minutes=30)))
    page = f"/back-office/sessions/{session_id}"
    shown = await back_office.get(page)
    assert shown.status_code == 200 and f'action="{page}/join"' in shown.text
    me = (await gateway.get("/api/v1/me", headers=organiser)).json()
    form = shown.text.split(f'action="{page}/join"', 1)[1].split("</form>", 1)[0]
    assert 'name="_csrf_token"' in form and f'value="{me.get("name") or ""}"' in form  # their name, prefilled

    joined = await post_form(back_office, page, f"{page}/join", {"name": "Claire Martin"})
    assert joined.status_code == 303, joined.text
    assert joined.headers["location"].startswith("https://")
    user = jitsi_claims(system, joined.headers["location"])["context"]["user"]
    assert (user["moderator"], user["name"]) == (True, "Claire Martin")

    # the same through the JSON API
    answer = await gateway.post(f"{API}/sessions/{session_id}/join", json={"name": "Claire"}, headers=organiser)
    assert answer.status_code == 200, answer.text
    assert jitsi_claims(system, answer.json()["url"])["context"]["user"]["moderator"] is True
    assert answer.json()["pin"]


async def test_a_room_not_open_yet_says_when_it_opens(system, back_office, gateway, organiser):
    start = paris_in(timedelta(days=3))
    session_id = await published_at(gateway, organiser, start)
    page = f"/back-office/sessions/{session_id}"
    nameless = await post_form(back_office, page, f"{page}/join", {"name": "  "})
    assert nameless.status_code == 400 and "Indiquez votre nom" in error_of(nameless.text, "name")

    early = await post_form(back_office, page, f"{page}/join", {"name": "Claire Martin"})
    assert early.status_code == 409, early.text
    opens = start - timedelta(hours=1)  # an hour before the start, in the session's zone
    summary = early.text.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert "pas encore ouverte" in summary and f"{opens:%H:%M}" in summary and "Europe/Paris" in summary
    assert str(opens.year) in summary
    assert 'value="Claire Martin"' in early.text  # what was typed is kept
    answer = await gateway.post(f"{API}/sessions/{session_id}/join", json={"name": "Claire"}, headers=organiser)
    assert (answer.status_code, answer.json()["code"]) == (409, "room_not_open")
    # a draft has no room
    theme = (await session_of(gateway, organiser, session_id))["theme_id"]
    draft = await gateway.post(
        f"{API}/sessions",
        json={"theme_id": theme, "title": "Brouillon", "local_start": start.strftime("%Y-%m-%dT%H:%M")},
        headers=organiser,
    )
    draft_page = f"/back-office/sessions/{draft.json()['id']}"
    assert f'action="{draft_page}/join"' not in (await back_office.get(draft_page)).text
    refused = await post_form(back_office, draft_page, f"{draft_page}/join", {"name": "Claire"})
    assert refused.status_code == 404 and "publiée" in refused.text


async def test_an_organiser_joins_a_permanent_room_as_its_moderator(system, back_office, gateway, organiser):
    opened = await post_form(
        back_office, "/back-office/rooms", "/back-office/rooms", {"name": unique("Assistance"), "entry_code": "lune42"}
    )
    room_id = opened.headers["location"].split("#room-")[1]
    rooms = await back_office.get("/back-office/rooms")
    card = rooms.text.split(f'id="room-{room_id}"', 1)[1].split("</li>", 1)[0]
    assert f'action="/back-office/rooms/{room_id}/join"' in card and f'id="field-join_name-{room_id}"' in card

    nameless = await post_form(back_office, "/back-office/rooms", f"/back-office/rooms/{room_id}/join", {"name": ""})
    assert nameless.status_code == 400 and "Indiquez votre nom" in error_of(nameless.text, f"join_name-{room_id}")
    joined = await post_form(
        back_office, "/back-office/rooms", f"/back-office/rooms/{room_id}/join", {"name": "Support Visiopass"}
    )
    assert joined.status_code == 303, joined.text
    user = jitsi_claims(system, joined.headers["location"])["context"]["user"]
    assert (user["moderator"], user["name"]) == (True, "Support Visiopass")  # and no entry code was asked
    answer = await gateway.post(f"{API}/rooms/{room_id}/join", json={"name": "Support"}, headers=organiser)
    assert answer.status_code == 200 and jitsi_claims(system, answer.json()["url"])["context"]["user"]["moderator"]

    await post_form(back_office, "/back-office/rooms", f"/back-office/rooms/{room_id}/close", {})
    closed = await post_form(back_office, "/back-office/rooms", f"/back-office/rooms/{room_id}/join", {"name": "X"})
    assert closed.status_code == 404 and "Cette salle est fermée" in closed.text
    answer = await gateway.post(f"{API}/rooms/{room_id}/join", json={"name": "Support"}, headers=organiser)
    assert answer.status_code == 404


async def test_nobody_but_organisers_joins_a_room_as_moderator(system, gateway, organiser):
    session_id = await published_at(gateway, organiser, paris_in(timedelta(minutes=30)))
    room = await gateway.post(f"{API}/rooms", json={"name": unique("Salle gardée")}, headers=organiser)
    manager = await sign_up(gateway, "catalogue-not-animator")
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        token = re.search(r'name="_csrf_token" value="([^"]+)"', (await client.get("/account")).text).group(1)
        for path in (f"/back-office/sessions/{session_id}/join", f"/back-office/rooms/{room.json()['id']}/join"):
            forged = await client.post(path, data={"_csrf_token": token, "name": "Intrus"}, follow_redirects=False)
            assert forged.status_code == 404, path
            anonymous = await gateway.post(path, data={"name": "Intrus"}, follow_redirects=False)
            assert anonymous.status_code in (303, 403), path  # the login page, or no CSRF token
    finally:
        await client.aclose()
    for path in (f"/sessions/{session_id}/join", f"/rooms/{room.json()['id']}/join"):
        refused = await gateway.post(f"{API}{path}", json={"name": "Intrus"}, headers=manager.auth)
        assert (refused.status_code, refused.json()["code"]) == (403, "organisers_only"), path
        assert (await gateway.post(f"{API}{path}", json={"name": "Intrus"})).status_code == 401


# -- who may ----------------------------------------------------------------------------------------------------------

PAGES = (
    "/back-office/themes",
    "/back-office/themes/new",
    "/back-office/sessions",
    "/back-office/sessions/calendar",
    "/back-office/sessions/new",
    "/back-office/series",
    "/back-office/series/new",
    "/back-office/rooms",
)


async def test_nobody_but_organisers_sees_the_catalogue_editor(system, gateway, back_office):
    manager = await sign_up(gateway, "catalogue-not-organiser")
    client = await portal_login(system.url("gateway"), manager.email)
    try:
        for path in PAGES:
            assert (await client.get(path)).status_code == 404, path
            assert (await back_office.get(path)).status_code == 200, path
            anonymous = await gateway.get(path, follow_redirects=False)
            assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next="), path
        shown = await client.get("/account")
        forged = await client.post(
            "/back-office/themes",
            data={"_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"', shown.text).group(1), "title": "X"},
        )
        assert forged.status_code == 404
    finally:
        await client.aclose()
    for path in ("/themes", "/sessions", "/series", "/rooms"):
        refused = await gateway.get(f"{API}{path}", headers=manager.auth)
        assert (refused.status_code, refused.json()["code"]) == (403, "organisers_only"), path
        assert (await gateway.get(f"{API}{path}")).status_code == 401
    refused = await gateway.post(f"{API}/themes", json={"title": "Thème pirate"}, headers=manager.auth)
    assert (refused.status_code, refused.json()["code"]) == (403, "organisers_only")


# -- the JSON API -----------------------------------------------------------------------------------------------------


async def test_the_json_api_relays_the_catalogue_and_its_refusals(gateway, organiser):
    theme = await gateway.post(f"{API}/themes", json={"title": unique("API"), "tags": ["a", "b"]}, headers=organiser)
    assert theme.status_code == 201, theme.text
    theme_id = theme.json()["id"]
    start = (today() + timedelta(days=45)).isoformat()
    body = {
        "theme_id": theme_id,
        "title": unique("Séance API"),
        "local_start": f"{start}T11:00",
        "duration_minutes": 90,
    }
    created = await gateway.post(f"{API}/sessions", json=body, headers=organiser)
    assert created.status_code == 201, created.text
    session = created.json()
    assert (session["status"], session["local_start"], session["price_tokens"]) == ("draft", f"{start}T11:00", 1)

    skipped = last_sunday_of_march(today().year + 1)
    gap = await gateway.post(
        f"{API}/sessions", json=body | {"local_start": f"{skipped.isoformat()}T02:30"}, headers=organiser
    )
    assert (gap.status_code, gap.json()["code"], gap.json()["field"]) == (400, "nonexistent_local_time", "local_start")
    listed = await gateway.get(f"{API}/sessions", params={"theme_id": theme_id, "limit": 1}, headers=organiser)
    assert listed.status_code == 200 and listed.json()["total"] == 1

    published = await gateway.post(f"{API}/sessions/{session['id']}/publish", headers=organiser)
    assert published.status_code == 200 and published.json()["status"] == "published"
    moved = await gateway.post(
        f"{API}/sessions/{session['id']}/reschedule",
        json={"local_start": f"{start}T15:00", "timezone": "Europe/Paris"},
        headers=organiser,
    )
    assert moved.status_code == 200 and moved.json()["local_start"] == f"{start}T15:00"
    cancelled = await gateway.post(f"{API}/sessions/{session['id']}/cancel", json={"reason": "Test"}, headers=organiser)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    frozen = await gateway.post(f"{API}/sessions/{session['id']}/publish", headers=organiser)
    assert frozen.status_code == 409 and frozen.json()["code"] == "session_cancelled"
    missing = await gateway.get(f"{API}/sessions/{uuid.uuid4()}", headers=organiser)
    assert missing.status_code == 404 and "instance" not in missing.json()


# -- bad input --------------------------------------------------------------------------------------------------------

# Values that pass every check at the edge, so that a mutated field is the only thing wrong with a body.
REALISTIC = {
    "local_start": "2031-05-06T14:00",
    "local_end": "2031-05-06T15:00",
    "timezone": "Europe/Paris",
    "until": "2031-06-30",
    "image_url": "https://exemple.fr/theme.png",
    "frequency": "weekly",
    "weekdays": "TU",
    "count": 3,
    "capacity": 10,
}


class OrganiserRoutes(bad_input.Api):
    def example(self, schema: dict[str, Any], name: str = "") -> Any:
        if name in REALISTIC and self.concrete(schema).get("type") != "array":
            return REALISTIC[name]
        return super().example(schema, name)


async def catalogue_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in CATALOGUE_TABLES}
    finally:
        await connection.close()


async def test_bad_input_to_every_organiser_route_is_a_problem_and_changes_nothing(system, gateway, organiser):
    theme = (await gateway.post(f"{API}/themes", json={"title": unique("Sweep")}, headers=organiser)).json()
    start = f"{(today() + timedelta(days=60)).isoformat()}T10:00"
    session = await gateway.post(
        f"{API}/sessions", json={"theme_id": theme["id"], "title": "Sweep", "local_start": start}, headers=organiser
    )
    series = await gateway.post(
        f"{API}/series",
        json={
            "theme_id": theme["id"],
            "recurrence": {"frequency": "daily", "count": 2},
            "local_start": start,
            "template": {"title": "Sweep"},
        },
        headers=organiser,
    )
    room = await gateway.post(f"{API}/rooms", json={"name": "Sweep"}, headers=organiser)
    assert [r.status_code for r in (session, series, room)] == [201, 201, 201], (session.text, series.text, room.text)
    ids = {
        "theme_id": theme["id"],
        "session_id": session.json()["id"],
        "series_id": series.json()["id"],
        "room_id": room.json()["id"],
    }
    database = system.stack.database_url("catalogue")
    async with httpx.AsyncClient(timeout=30) as client:
        before = await catalogue_counts(database)
        sent = 0
        for kind in ("themes", "sessions", "series", "rooms"):
            routes = OrganiserRoutes(system.url("gateway"), f"{API}/{kind}", organiser, ids)
            await routes.load(client)
            sent += await bad_input.sweep(routes, client)
        assert await catalogue_counts(database) == before
    assert sent > 200
    for path in ("themes", f"sessions/{ids['session_id']}", f"series/{ids['series_id']}", "rooms"):
        assert (await gateway.get(f"{API}/{path}", headers=organiser)).status_code == 200
