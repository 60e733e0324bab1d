"""The catalogue's internal API through the real service: the organiser's changes and their problem details, the
events on `catalogue.session`, enrolment counts from enrollment's events, the scheduler's J-2 for a session
published late, rooms (a Jitsi token for a session about to start, a permanent room's perpetual link)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from test_billing_saga import publish

from contracts import decode
from contracts.events.enrollment import Enrolled, EnrollmentCancelled
from kit import records_with_keys, wait_for

PARIS = ZoneInfo("Europe/Paris")


def local(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
async def catalogue(system) -> Any:  # type: ignore[no-untyped-def]
    headers = {"X-Internal-Token": system.internal_token, "X-Actor-Id": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=system.url("catalogue"), headers=headers, timeout=30) as client:
        yield client


async def theme(catalogue: httpx.AsyncClient, **fields: Any) -> str:
    answer = await catalogue.post("/internal/back-office/themes", json={"title": "Pronote"} | fields)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def published(catalogue: httpx.AsyncClient, theme_id: str, starts: datetime, **fields: Any) -> dict[str, Any]:
    body = {"theme_id": theme_id, "title": "Prise en main", "local_start": local(starts)} | fields
    created = await catalogue.post("/internal/back-office/sessions", json=body)
    assert created.status_code == 201, created.text
    answer = await catalogue.post(f"/internal/back-office/sessions/{created.json()['id']}/publish")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def session_events(system, session_id: str) -> list[Any]:  # type: ignore[no-untyped-def]
    records = await records_with_keys(system.stack.kafka_bootstrap, "catalogue.session", [session_id])
    return [decode(r.topic, r.key, r.value, r.headers).event for r in records]


async def test_an_organiser_publishes_and_the_planning_shows_it(system, catalogue: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    theme_id = await theme(catalogue, audience="Lycées", tags=["vie scolaire", "vie scolaire", "notes"])
    starts = (datetime.now(UTC) + timedelta(days=40)).replace(minute=0, second=0, microsecond=0)
    animator = f"Claire {uuid.uuid4().hex[:10]}"  # other tests publish sessions too: this one is found by its animator
    session = await published(catalogue, theme_id, starts, capacity=2, premium_price_tokens=5, animator=animator)
    assert (session["status"], session["places_left"], session["premium"]) == ("published", 2, True)
    assert session["starts_at"] == starts.isoformat().replace("+00:00", "Z")

    month = starts.astimezone(PARIS).strftime("%Y-%m")
    planning = (await catalogue.get("/internal/planning", params={"month": month, "q": animator})).json()
    assert [item["id"] for item in planning["items"]] == [session["id"]]
    assert planning["items"][0]["theme_title"] == "Pronote"
    themes = (await catalogue.get("/internal/themes")).json()["items"]
    assert [(t["tags"], t["session_count"]) for t in themes if t["id"] == theme_id] == [(["vie scolaire", "notes"], 1)]

    async def announced() -> bool:
        return [type(e).__name__ for e in await session_events(system, session["id"])] == ["SessionScheduled"]

    await wait_for(announced, what="SessionScheduled on catalogue.session")

    # enrollment's events fill the session: places left, and the price is fixed from then on
    account = uuid.uuid4()
    enrolments = [uuid.uuid4(), uuid.uuid4()]
    sid = uuid.UUID(session["id"])
    await publish(system, [Enrolled(enrollment_id=e, account_id=account, session_id=sid) for e in enrolments])
    await publish(
        system, [EnrollmentCancelled(enrollment_id=enrolments[1], account_id=account, session_id=sid, refund=True)]
    )

    async def one_left() -> bool:
        return bool((await catalogue.get(f"/internal/sessions/{sid}")).json()["places_left"] == 1)

    await wait_for(one_left, what="the enrolment count from enrollment's events")
    body = {"theme_id": theme_id, "title": "Prise en main", "local_start": local(starts), "price_tokens": 2}
    locked = await catalogue.put(f"/internal/back-office/sessions/{sid}", json=body)
    assert locked.status_code == 409, locked.text
    assert (locked.json()["code"], locked.json()["field"]) == ("price_locked", "price_tokens")


async def test_refusals_name_the_field_to_fix_and_change_nothing(catalogue: httpx.AsyncClient) -> None:
    theme_id = await theme(catalogue)
    before = (await catalogue.get("/internal/back-office/sessions", params={"theme_id": theme_id})).json()["total"]
    cases = [
        ({"local_start": "2030-03-31T02:30"}, 400, "nonexistent_local_time", "local_start"),
        ({"local_start": "2030-04-01T10:00", "timezone": "Europe/Atlantis"}, 400, "unknown_time_zone", "timezone"),
        ({"local_start": "2020-04-01T10:00"}, 400, "start_in_past", "local_start"),
        ({"local_start": "2030-04-01T10:00", "local_end": "2030-04-01T09:00"}, 400, "ends_before_start", "local_end"),
        ({"local_start": "2030-04-01T10:00", "access": "code"}, 400, "entry_code_required", "entry_code"),
        ({"local_start": "2030-04-01T10:00", "theme_id": str(uuid.uuid4())}, 400, "unknown_theme", "theme_id"),
        ({"local_start": "2030-04-01T10:00+02:00"}, 400, "invalid_request", None),
        ({"local_start": "2030-04-01T10:00", "capacity": 0}, 400, "invalid_request", None),
        ({"local_start": "2030-04-01T10:00", "title": "a\x00b"}, 400, "invalid_request", None),
    ]
    for changes, status, code, field in cases:
        body = {"theme_id": theme_id, "title": "Prise en main"} | changes
        answer = await catalogue.post("/internal/back-office/sessions", json=body)
        assert answer.status_code == status, (changes, answer.text)
        assert answer.json()["code"] == code, (changes, answer.text)
        if field:
            assert answer.json()["field"] == field
    after = (await catalogue.get("/internal/back-office/sessions", params={"theme_id": theme_id})).json()["total"]
    assert after == before == 0
    bad_month = await catalogue.get("/internal/planning", params={"month": "2030-13"})
    assert bad_month.status_code == 400
    bad_zone = await catalogue.get("/internal/planning", params={"tz": "../../etc/passwd"})
    assert (bad_zone.status_code, bad_zone.json()["code"]) == (400, "unknown_time_zone")


async def test_a_session_published_the_day_before_gets_its_j2_at_once(system, catalogue: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    theme_id = await theme(catalogue)
    starts = (datetime.now(UTC) + timedelta(hours=26)).replace(second=0, microsecond=0)
    session = await published(catalogue, theme_id, starts)

    async def j2() -> bool:
        offsets = [getattr(e, "offset", None) for e in await session_events(system, session["id"])]
        return offsets == [None, "J-2"]

    await wait_for(j2, what="SessionStarting J-2 for a session published late (and no J-7)")

    cancelled = await catalogue.post(
        f"/internal/back-office/sessions/{session['id']}/cancel", json={"reason": "Formateur absent"}
    )
    assert cancelled.status_code == 200, cancelled.text
    again = await catalogue.post(f"/internal/back-office/sessions/{session['id']}/publish")
    assert (again.status_code, again.json()["code"]) == (409, "session_cancelled")


async def test_rooms_give_signed_links_only_while_open(system, catalogue: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    theme_id = await theme(catalogue)
    soon = (datetime.now(UTC) + timedelta(minutes=30)).replace(second=0, microsecond=0)
    later = soon + timedelta(days=3)
    open_soon = await published(catalogue, theme_id, soon, provider="jitsi")
    far = await published(catalogue, theme_id, later, provider="jitsi")
    joined = await catalogue.post(f"/internal/sessions/{open_soon['id']}/join", json={"name": "Léa Petit"})
    assert joined.status_code == 200, joined.text
    token = joined.json()["url"].split("jwt=")[1]
    claims = jwt.decode(token, system.room_secret, algorithms=["HS256"], audience="jitsi")
    assert claims["context"]["user"]["name"] == "Léa Petit"
    assert claims["context"]["user"]["moderator"] is False
    animator = await catalogue.post(f"/internal/back-office/sessions/{open_soon['id']}/join", json={"name": "Claire"})
    assert animator.status_code == 200, animator.text
    animator_claims = jwt.decode(
        animator.json()["url"].split("jwt=")[1], system.room_secret, algorithms=["HS256"], audience="jitsi"
    )
    assert animator_claims["context"]["user"]["moderator"] is True
    assert animator_claims["room"] == claims["room"] and animator.json()["pin"] == joined.json()["pin"]
    assert claims["exp"] == int((soon + timedelta(minutes=60 + 30)).timestamp())
    too_early = await catalogue.post(f"/internal/sessions/{far['id']}/join", json={"name": "Léa Petit"})
    assert (too_early.status_code, too_early.json()["code"]) == (409, "room_not_open")

    room = await catalogue.post(
        "/internal/back-office/rooms", json={"name": "Support", "provider": "jitsi", "entry_code": "4321"}
    )
    assert room.status_code == 201, room.text
    link = room.json()["link_token"]
    assert len(link) >= 32 and room.json()["pin"].isdigit()
    shown = (await catalogue.get(f"/internal/rooms/{link}")).json()
    assert shown["entry_code"] is True and "link_token" not in shown
    wrong = await catalogue.post(f"/internal/rooms/{link}/join", json={"name": "Paul", "entry_code": "0000"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_entry_code")
    right = await catalogue.post(f"/internal/rooms/{link}/join", json={"name": "Paul", "entry_code": "4321"})
    assert right.status_code == 200 and "jwt=" in right.json()["url"]
    host = await catalogue.post(f"/internal/back-office/rooms/{room.json()['id']}/join", json={"name": "Support"})
    assert host.status_code == 200, host.text
    host_claims = jwt.decode(
        host.json()["url"].split("jwt=")[1], system.room_secret, algorithms=["HS256"], audience="jitsi"
    )
    assert host_claims["context"]["user"]["moderator"] is True
    closed = await catalogue.post(f"/internal/back-office/rooms/{room.json()['id']}/close")
    assert closed.status_code == 200
    assert (await catalogue.get(f"/internal/rooms/{link}")).status_code == 404
