"""The public pages of the participation links on the running system (gateway, enrollment, catalogue, Kafka): a
confirmed enrolment's link waits (start, waiting message, agenda, equipment test, phone and PIN), opens (name, then a
303 to the Jitsi URL whose JWT names the attendance), asks the entry code first when the session has one, and once
the session is over takes the participants' feedback; a wrong, revoked, expired or random link is one 404, the same
bytes whatever the cause. Also the rooms' hooks (BigBlueButton's signed end callback, Jitsi's webhook), the
certificate check and a certificate's feedback link."""

import hashlib
import hmac
import html
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt
import pytest
from billing_world import People, make_people, paid_order
from join_world import ended, enrolled_link, feedback_token, join_state, starting_soon
from portal_world import csrf_token, submit
from test_enrolment_pages import visible_text as tagless

from catalogue.rooms import voice_bridge

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def people(system) -> People:  # type: ignore[no-untyped-def]
    people = await make_people(system, "join-pages")
    await paid_order(system.url("gateway"), people.manager.auth, people.manager.account_id)
    return people


@pytest.fixture
async def browser(system):  # type: ignore[no-untyped-def]
    """A browser without login: the link is all a participant has."""
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


@pytest.fixture
async def enrollment(system):  # type: ignore[no-untyped-def]
    headers = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("enrollment"), headers=headers, timeout=30) as client:
        yield client


async def attendance(enrollment: httpx.AsyncClient, people: People, enrollment_id: str) -> list[dict[str, Any]]:
    path = f"/internal/enrolments/{enrollment_id}/attendance"
    answer = await enrollment.get(path, params={"account_id": people.manager.account_id})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def visible_text(page: str) -> str:
    return html.unescape(tagless(page))


def jitsi_claims(system: Any, url: str, session_id: str) -> dict[str, Any]:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "meet.jit.si", f"/visiopass-{session_id}")
    token = parse_qs(parts.query)["jwt"][0]
    claims: dict[str, Any] = jwt.decode(token, system.room_secret, algorithms=["HS256"], audience="jitsi")
    return claims


async def test_a_link_waits_opens_lets_people_in_and_takes_their_feedback_after_the_end(  # type: ignore[no-untyped-def]
    system, people, browser, enrollment
) -> None:
    session_id, enrollment_id, token = await enrolled_link(
        system,
        people.manager,
        waiting_message="Installez-vous, nous commençons à l'heure.",
        agenda="1. Accueil\n2. Démo",
    )
    page = f"/join/{token}"

    waiting = await browser.get(page)
    assert waiting.status_code == 200, waiting.text
    assert 'data-state="waiting"' in waiting.text and 'id="opens-at"' in waiting.text
    text = visible_text(waiting.text)
    assert "Prise en main de Pronote" in text and "Installez-vous, nous commençons à l'heure." in text
    assert "1. Accueil" in text and 'id="agenda"' in waiting.text
    assert 'href="https://test.webrtc.org/"' in waiting.text
    pin = voice_bridge(system.room_secret, uuid.UUID(session_id))
    assert "+33 1 84 88 00 00" in text and pin in text
    assert 'data-viewer-time="' in waiting.text and 'data-zone="Europe/Paris"' in waiting.text
    async with httpx.AsyncClient(base_url=system.url("gateway"), cookies={"vp_lang": "en"}) as english:
        text = visible_text((await english.get(page)).text)
        assert "Get your equipment ready" in text and "Without a computer, call +33 1 84 88 00 00" in text
    early = await browser.post(page, data={"_csrf_token": csrf_token(waiting.text), "name": "Camille Durand"})
    assert early.status_code == 409 and 'data-state="waiting"' in early.text

    await starting_soon(system, session_id, token)
    opened = await browser.get(page)
    assert 'data-state="open"' in opened.text and 'id="join-form"' in opened.text
    assert 'id="code-form"' not in opened.text
    nameless = await submit(browser, page, page, {"name": "  ", "email": "camille@"})
    assert nameless.status_code == 400
    assert 'id="error-name"' in nameless.text and 'id="error-email"' in nameless.text
    assert 'value="camille@"' in nameless.text  # what was typed comes back

    entered = await submit(browser, page, page, {"name": "Camille Durand", "email": "camille.durand@example.fr"})
    assert entered.status_code == 303, entered.text
    claims = jitsi_claims(system, entered.headers["location"], session_id)
    assert claims["context"]["user"]["name"] == "Camille Durand" and claims["context"]["user"]["moderator"] is False
    (camille,) = await attendance(enrollment, people, enrollment_id)
    assert (camille["participant_name"], camille["left_at"]) == ("Camille Durand", None)
    assert claims["context"]["user"]["id"] == camille["id"]  # Jitsi's webhook will name this attendance

    # Jitsi says Camille left: only with its token, only a known event changes anything
    hook = "/hooks/rooms/jitsi"
    left = {"eventType": "PARTICIPANT_LEFT", "fqn": f"visiopass/visiopass-{session_id}", "data": {"id": camille["id"]}}
    bearer = {"Authorization": f"Bearer {system.jitsi_webhook_token}"}
    assert (await browser.post(hook, json=left)).status_code == 401
    assert (await browser.post(hook, json=left, headers={"Authorization": "Bearer wrong"})).status_code == 401
    malformed = await browser.post(hook, json={"eventType": 7, "data": []}, headers=bearer)
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_request"
    assert (await browser.post(hook, json=left | {"eventType": "ROOM_CREATED"}, headers=bearer)).status_code == 204
    assert (await attendance(enrollment, people, enrollment_id))[0]["left_at"] is None
    assert (await browser.post(hook, json=left, headers=bearer)).status_code == 204
    assert (await attendance(enrollment, people, enrollment_id))[0]["left_at"] is not None

    # BigBlueButton's end callback: the catalogue's signature or nothing
    again = await submit(browser, page, page, {"name": "Léa Martin"})
    assert again.status_code == 303
    ended_hook = f"/hooks/rooms/{session_id}/ended"
    signature = hmac.new(system.room_secret.encode(), f"room-ended:{session_id}".encode(), hashlib.sha256).hexdigest()
    one_digit_off = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    for wrong in ("", "?sig=00", f"?sig={one_digit_off}", f"?sig={signature.upper()}"):
        assert (await browser.get(ended_hook + wrong)).status_code == 404, wrong
    other = hmac.new(system.room_secret.encode(), f"room-ended:{uuid.uuid4()}".encode(), hashlib.sha256).hexdigest()
    assert (await browser.post(f"{ended_hook}?sig={other}")).status_code == 404
    assert not all(item["left_at"] for item in await attendance(enrollment, people, enrollment_id))
    done = await browser.get(f"{ended_hook}?sig={signature}&meetingID=visiopass-{session_id}")
    assert done.status_code == 204, done.text
    assert all(item["left_at"] for item in await attendance(enrollment, people, enrollment_id))
    assert (await browser.post(f"{ended_hook}?sig={signature}")).status_code == 204  # POST too, and idempotent

    # over: the feedback of those who came, under the name they typed
    await ended(system, session_id, token)
    over = await browser.get(page)
    assert 'data-state="ended"' in over.text and 'id="feedback-form"' in over.text
    stranger = await submit(browser, page, f"{page}/feedback", {"name": "Inconnu", "rating": "5"})
    assert stranger.status_code == 409 and 'id="error-name"' in stranger.text
    unrated = await submit(browser, page, f"{page}/feedback", {"name": "camille durand", "rating": "9"})
    assert unrated.status_code == 400 and 'id="error-rating"' in unrated.text
    fields = {"name": "camille durand", "rating": "5", "comment": "Très clair, merci."}
    given = await submit(browser, page, f"{page}/feedback", fields)
    assert given.status_code == 303 and given.headers["location"] == f"{page}?done=feedback"
    assert 'id="feedback-done"' in (await browser.get(given.headers["location"])).text
    twice = await submit(browser, page, f"{page}/feedback", fields)
    assert twice.status_code == 409 and 'id="error-name"' in twice.text
    assert "déjà enregistré" in visible_text(twice.text)

    # the certificates issued at the end: checked by their code, and Léa's feedback link from her thank-you mail
    answer = await enrollment.get(
        f"/internal/enrolments/{enrollment_id}/certificates", params={"account_id": people.manager.account_id}
    )
    assert answer.status_code == 200, answer.text
    certificates = {item["participant_name"]: item for item in answer.json()["items"]}
    assert set(certificates) == {"Camille Durand", "Léa Martin"}
    checked = await browser.get("/certificates/verify", params={"code": certificates["Camille Durand"]["code"].lower()})
    assert checked.status_code == 200, checked.text
    text = visible_text(checked.text)
    assert (
        "Camille Durand" in text and "Prise en main de Pronote" in text and 'id="certificate-duration"' in checked.text
    )
    unknown = await browser.get("/certificates/verify", params={"code": "AAAA-BBBB-CCCC-DDDD"})
    assert unknown.status_code == 404 and 'id="certificate-unknown"' in unknown.text
    assert (await browser.get("/certificates/verify")).status_code == 200

    lea = f"/feedback/{feedback_token(system.link_key, certificates['Léa Martin']['id'])}"
    shown = await browser.get(lea)
    assert shown.status_code == 200 and "Léa Martin" in visible_text(shown.text)
    rated = await submit(browser, lea, lea, {"rating": "4", "comment": "Bien."})
    assert rated.status_code == 303 and 'id="feedback-done"' in (await browser.get(rated.headers["location"])).text
    assert 'id="feedback-given"' in (await browser.get(lea)).text
    assert (await browser.get(f"/feedback/{'A' * 43}")).status_code == 404


async def test_an_entry_code_is_asked_first_and_remembered_for_that_link(system, people, browser) -> None:  # type: ignore[no-untyped-def]
    session_id, _, token = await enrolled_link(system, people.manager, access="code", entry_code="ROSE-2027")
    page = f"/join/{token}"
    await starting_soon(system, session_id, token)
    asked = await browser.get(page)
    assert 'id="code-form"' in asked.text and 'id="join-form"' not in asked.text
    skipped = await browser.post(page, data={"_csrf_token": csrf_token(asked.text), "name": "Camille Durand"})
    assert skipped.status_code == 403 and 'id="error-code"' in skipped.text
    wrong = await submit(browser, page, f"{page}/entry-code", {"code": "TULIPE"})
    assert wrong.status_code == 403 and 'id="error-code"' in wrong.text
    right = await submit(browser, page, f"{page}/entry-code", {"code": "ROSE-2027"})
    assert right.status_code == 303 and right.headers["location"] == page
    cookie = right.headers["set-cookie"]
    assert (
        "vp_join_code=" in cookie and f"Path={page}" in cookie and "HttpOnly" in cookie.replace("httponly", "HttpOnly")
    )
    shown = await browser.get(page)
    assert 'id="join-form"' in shown.text and 'id="code-form"' not in shown.text
    entered = await submit(browser, page, page, {"name": "Camille Durand"})
    assert entered.status_code == 303, entered.text
    assert jitsi_claims(system, entered.headers["location"], session_id)["context"]["user"]["name"] == "Camille Durand"
    # another browser, or a forged cookie, is asked the code again
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as other:
        other.cookies.set("vp_join_code", "9999999999.00", path=page)
        assert 'id="code-form"' in (await other.get(page)).text


async def test_a_wrong_revoked_expired_or_random_link_gets_one_and_the_same_404(  # type: ignore[no-untyped-def]
    system, people, browser
) -> None:
    _, revoked_enrolment, revoked = await enrolled_link(system, people.manager)
    async with httpx.AsyncClient(
        base_url=system.url("enrollment"), headers={"X-Internal-Token": system.internal_token}, timeout=30
    ) as enrollment:
        answer = await enrollment.post(
            f"/internal/enrolments/{revoked_enrolment}/link/revoke", json={"account_id": people.manager.account_id}
        )
        assert answer.status_code == 204, answer.text
    expired_session, _, expired = await enrolled_link(system, people.manager)
    assert await join_state(system, expired) == "waiting"
    # the session took place 40 days ago, as enrollment knows it: its link is past its 30 days
    connection = await asyncpg.connect(system.stack.database_url("enrollment").replace("+asyncpg", ""))
    try:
        await connection.execute(
            "UPDATE sessions SET starts_at = now() - interval '40 days', ends_at = now() - interval '40 days' + "
            "interval '1 hour', status = 'ended' WHERE id = $1",
            uuid.UUID(expired_session),
        )
    finally:
        await connection.close()
    assert await join_state(system, expired) is None

    await browser.get("/")  # the CSRF cookie the pages' forms use, the same for every answer below
    answers = {
        cause: await browser.get(f"/join/{token}")
        for cause, token in {
            "revoked": revoked,
            "expired": expired,
            "random": "Zm9vYmFyYmF6cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2Fs",
            "malformed": "not-a-token",
            "too long": "A" * 200,
        }.items()
    }
    statuses = {cause: answer.status_code for cause, answer in answers.items()}
    assert set(statuses.values()) == {404}, statuses
    bodies = {answer.content for answer in answers.values()}
    assert len(bodies) == 1, "the 404 page differs by cause"
    (body,) = bodies
    assert 'id="link-not-found"' in answers["revoked"].text
    # POSTs to such a link say no more
    form = {"_csrf_token": csrf_token(answers["revoked"].text), "name": "Camille"}
    for token in (revoked, expired, "Zm9vYmFyYmF6cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2Fs"):
        for path in (f"/join/{token}", f"/join/{token}/entry-code", f"/join/{token}/feedback"):
            answer = await browser.post(path, data=form | {"code": "X", "rating": "3"})
            assert (answer.status_code, answer.content) == (404, body), path
