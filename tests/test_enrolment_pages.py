"""Enrolments through the gateway on the running system: the JSON API (202 then confirmed, refusals as problem
details with their codes, members read and do not act, another institution gets 404, the organisers' view), the
session page's "S'inscrire" form, "Mes Webvisio" and the back-office session page, as a browser sends them."""

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from billing_world import People, make_people, paid_order
from portal_world import portal_login, submit

from api_world import MEMBER_PASSWORD, PASSWORD, grant_organiser, sign_up
from kit import wait_for

pytestmark = pytest.mark.infra
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
async def people(system) -> People:  # type: ignore[no-untyped-def]
    return await people_with_tokens(system, "enrolment-pages")


async def people_with_tokens(system: Any, label: str) -> People:
    """Institutions A (a manager, a member) and B, an organiser; A and B each hold the tokens of a paid order."""
    people = await make_people(system, label)
    base = system.url("gateway")
    await asyncio.gather(
        paid_order(base, people.manager.auth, people.manager.account_id),
        paid_order(base, people.other.auth, people.other.account_id),
    )
    return people


@pytest.fixture
async def gateway(system):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


async def published_session(system: Any, starts: datetime | None = None, **fields: Any) -> str:
    """A session published through the catalogue, once enrollment's copy of it has arrived (catalogue's event)."""
    headers = {"X-Internal-Token": system.internal_token, "X-Actor-Id": str(uuid.uuid4())}
    starts = starts or datetime.now(UTC) + timedelta(days=20)
    async with httpx.AsyncClient(base_url=system.url("catalogue"), headers=headers, timeout=30) as catalogue:
        theme = await catalogue.post("/internal/back-office/themes", json={"title": f"Pronote {uuid.uuid4().hex[:6]}"})
        assert theme.status_code == 201, theme.text
        body = {
            "theme_id": theme.json()["id"],
            "title": "Prise en main de Pronote",
            "local_start": starts.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M"),
        } | fields
        made = await catalogue.post("/internal/back-office/sessions", json=body)
        assert made.status_code == 201, made.text
        session_id = str(made.json()["id"])
        published = await catalogue.post(f"/internal/back-office/sessions/{session_id}/publish")
        assert published.status_code == 200, published.text
    internal = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("enrollment"), headers=internal, timeout=30) as enrollment:

        async def known() -> bool:
            return (await enrollment.get(f"/internal/sessions/{session_id}/enrolments")).status_code == 200

        await wait_for(known, timeout=30, what="enrollment's copy of the session")
    return session_id


async def enrolment_until(
    gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, enrollment_id: str, statuses: set[str]
) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        answer = await gateway.get(f"/api/v1/accounts/{account_id}/enrolments/{enrollment_id}", headers=auth)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in statuses:
            return dict(answer.json())
        assert time.monotonic() - started < 30, answer.json()
        await asyncio.sleep(0.1)


async def confirmed(
    gateway: httpx.AsyncClient, auth: dict[str, str], account_id: str, session_id: str, **fields: Any
) -> dict[str, Any]:
    """An enrolment asked through the API and confirmed (asked again while billing has not yet learnt that the
    freshly signed-up account is verified)."""
    for _ in range(20):
        asked = await gateway.post(
            f"/api/v1/accounts/{account_id}/enrolments",
            json={"session_id": session_id, "expected_participants": 8} | fields,
            headers=auth,
        )
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "pending"
        done = await enrolment_until(gateway, auth, account_id, asked.json()["id"], {"confirmed", "rejected"})
        if done["status"] == "confirmed":
            return done
        assert done["reason"] == "account_unverified", done
        await asyncio.sleep(0.5)
    raise AssertionError("never confirmed")


@contextlib.asynccontextmanager
async def logged_in(base: str, email: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    client = await portal_login(base, email, password)
    try:
        yield client
    finally:
        await client.aclose()


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ").replace("\xa0", " ")


async def test_the_api_enrols_with_202_then_confirms_and_authorises_each_caller(system, people, gateway) -> None:  # type: ignore[no-untyped-def]
    session_id = await published_session(system)
    a = people.manager.account_id
    enrolment = await confirmed(
        gateway, people.manager.auth, a, session_id, questions="Peut-on voir l'export des notes ?"
    )
    assert (enrolment["session"]["id"], enrolment["expected_participants"]) == (session_id, 8)

    listed = await gateway.get(f"/api/v1/accounts/{a}/enrolments?when=upcoming", headers=people.member)
    assert listed.status_code == 200, listed.text
    assert enrolment["id"] in [item["id"] for item in listed.json()["items"]]
    one = f"/api/v1/accounts/{a}/enrolments/{enrolment['id']}"
    assert (await gateway.get(one, headers=people.member)).status_code == 200
    # a member reads, does not act
    refused = await gateway.post(f"{one}/cancellation", headers=people.member)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    body = {"session_id": session_id, "expected_participants": 3}
    refused = await gateway.post(f"/api/v1/accounts/{a}/enrolments", json=body, headers=people.member)
    assert refused.status_code == 403
    # another institution: nothing of A's exists
    for path in (one, f"/api/v1/accounts/{a}/enrolments"):
        assert (await gateway.get(path, headers=people.other.auth)).status_code == 404
    b = people.other.account_id
    theirs = await gateway.get(f"/api/v1/accounts/{b}/enrolments/{enrolment['id']}", headers=people.other.auth)
    assert theirs.status_code == 404
    # enrolling twice: a problem with its code
    again = await gateway.post(f"/api/v1/accounts/{a}/enrolments", json=body, headers=people.manager.auth)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "already_enrolled" and "instance" not in again.json()
    # the organisers see it with the question
    shown = await gateway.get(f"/api/v1/back-office/sessions/{session_id}/enrolments", headers=people.organiser)
    assert shown.status_code == 200, shown.text
    (item,) = shown.json()["items"]
    assert (item["account_id"], item["questions"]) == (a, "Peut-on voir l'export des notes ?")
    assert (
        await gateway.get(f"/api/v1/back-office/sessions/{session_id}/enrolments", headers=people.member)
    ).status_code == 403
    # cancelled before the cut-off: refunded
    cancelled = await gateway.post(f"{one}/cancellation", headers=people.manager.auth)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["refund"]) == ("cancelled", True)


async def test_refusals_come_with_their_codes(system, people, gateway) -> None:  # type: ignore[no-untyped-def]
    a, b = people.manager.account_id, people.other.account_id
    full = await published_session(system, capacity=1)
    await confirmed(gateway, people.other.auth, b, full)
    body = {"session_id": full, "expected_participants": 4}
    refused = await gateway.post(f"/api/v1/accounts/{a}/enrolments", json=body, headers=people.manager.auth)
    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    waiting = f"/api/v1/accounts/{a}/sessions/{full}/waiting-list"
    joined = await gateway.post(waiting, json={"expected_participants": 4}, headers=people.manager.auth)
    assert joined.status_code == 201, joined.text
    assert joined.json()["status"] == "waiting"
    again = await gateway.post(waiting, json={"expected_participants": 4}, headers=people.manager.auth)
    assert (again.status_code, again.json()["code"]) == (409, "already_waiting")
    listed = await gateway.get(f"/api/v1/accounts/{a}/enrolments", headers=people.manager.auth)
    assert joined.json()["id"] in [entry["id"] for entry in listed.json()["waiting_list"]]
    nothing_offered = await gateway.post(
        f"/api/v1/accounts/{a}/waiting-list/{joined.json()['id']}/confirmation", headers=people.manager.auth
    )
    assert (nothing_offered.status_code, nothing_offered.json()["code"]) == (409, "no_place_offered")
    assert (await gateway.delete(waiting, headers=people.manager.auth)).status_code == 204
    assert (await gateway.delete(waiting, headers=people.manager.auth)).status_code == 404

    soon = await published_session(system, datetime.now(UTC) + timedelta(hours=20))
    enrolment = await confirmed(gateway, people.manager.auth, a, soon)
    late = await gateway.post(
        f"/api/v1/accounts/{a}/enrolments/{enrolment['id']}/cancellation", headers=people.manager.auth
    )
    assert (late.status_code, late.json()["code"]) == (409, "cancellation_closed")

    unknown = await gateway.post(
        f"/api/v1/accounts/{a}/enrolments",
        json={"session_id": str(uuid.uuid4()), "expected_participants": 1},
        headers=people.manager.auth,
    )
    assert (unknown.status_code, unknown.json()["code"]) == (409, "session_unavailable")
    bad = await gateway.post(
        f"/api/v1/accounts/{a}/enrolments",
        json={"session_id": full, "expected_participants": 0},
        headers=people.manager.auth,
    )
    assert bad.status_code == 400


async def test_the_portal_enrols_from_the_session_page_and_shows_it_in_mes_webvisio(system, people, gateway) -> None:  # type: ignore[no-untyped-def]
    base = system.url("gateway")
    session_id = await published_session(system)
    page = f"/planning/sessions/{session_id}"
    anonymous = await gateway.get(page)
    assert "Connectez-vous pour inscrire votre établissement" in anonymous.text
    assert 'id="enrol-form"' not in anonymous.text

    async with logged_in(base, people.member_email, MEMBER_PASSWORD) as member:
        shown = await member.get(page)
        assert 'id="enrol-member"' in shown.text and 'id="enrol-form"' not in shown.text
        refused = await submit(member, page, f"{page}/enrolment", {"expected_participants": "3", "action": "enrol"})
        assert refused.status_code == 403

    async with logged_in(base, people.manager.email) as browser:
        shown = await browser.get(page)
        assert shown.status_code == 200 and 'id="enrol-form"' in shown.text
        assert 'id="enrol-balance"' in shown.text
        wrong = await submit(browser, page, f"{page}/enrolment", {"expected_participants": "0", "action": "enrol"})
        assert wrong.status_code == 400 and 'id="error-expected_participants"' in wrong.text
        fields = {"expected_participants": "12", "questions": "Comment exporter les notes ?", "action": "enrol"}
        done = await submit(browser, page, f"{page}/enrolment", fields)
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith("/account/webvisio?done=requested&enrolment=")
        enrollment_id = done.headers["location"].rsplit("=", 1)[1]
        listed = await browser.get(done.headers["location"])
        assert listed.status_code == 200
        assert f'id="enrolment-{enrollment_id}"' in listed.text
        state = await enrolment_until(
            gateway, people.manager.auth, people.manager.account_id, enrollment_id, {"confirmed", "rejected"}
        )
        assert state["status"] == "confirmed", state
        listed = await browser.get("/account/webvisio")
        row = listed.text.split(f'id="enrolment-{enrollment_id}"')[1].split("</tr>")[0]
        assert 'data-status="confirmed"' in listed.text and "Confirmée" in row
        assert "Annuler l'inscription" in row

        again = await submit(browser, page, f"{page}/enrolment", {"expected_participants": "2", "action": "enrol"})
        assert again.status_code == 409
        assert "déjà inscrit à cette session" in visible_text(again.text)

        organiser = await sign_up(gateway, "enrolment-organiser")
        await grant_organiser(system, organiser.email)
        async with logged_in(base, organiser.email) as back_office:
            organiser_page = await back_office.get(f"/back-office/sessions/{session_id}")
            assert organiser_page.status_code == 200
            assert 'id="enrolment-list"' in organiser_page.text
            assert "Comment exporter les notes ?" in organiser_page.text
            assert "Confirmée" in organiser_page.text

        cancelled = await submit(browser, "/account/webvisio", f"/account/webvisio/{enrollment_id}/cancellation", {})
        assert cancelled.status_code == 303 and cancelled.headers["location"] == "/account/webvisio?done=cancelled"


async def test_an_institution_without_tokens_is_told_why_and_where_to_buy(system, gateway) -> None:  # type: ignore[no-untyped-def]
    manager = await sign_up(gateway, "enrolment-poor", verified_with=system.stack.mail_api)
    session_id = await published_session(system)
    asked = await gateway.post(
        f"/api/v1/accounts/{manager.account_id}/enrolments",
        json={"session_id": session_id, "expected_participants": 5},
        headers=manager.auth,
    )
    assert asked.status_code == 202, asked.text
    done = await enrolment_until(gateway, manager.auth, manager.account_id, asked.json()["id"], {"rejected"})
    assert done["reason"] in ("insufficient_balance", "account_unverified")
    async with logged_in(system.url("gateway"), manager.email) as browser:
        listed = await browser.get("/account/webvisio")
        row = listed.text.split(f'id="enrolment-{asked.json()["id"]}"')[1].split("</tr>")[0]
        assert "Refusée" in row
        if done["reason"] == "insufficient_balance":
            assert "pas assez de jetons" in row and 'href="/account/tokens"' in row
        shown = await browser.get(f"/planning/sessions/{session_id}")
        assert 'id="enrol-no-tokens"' in shown.text and 'id="buy-tokens"' in shown.text
