"""Taking part through the gateway on the running system (docs/portal.md, "Mes Webvisio: taking part", "Back-office:
statistics"): an enrolment's participation link in Mes Webvisio with "Accès" disabled until the room opens, revoked
and re-issued (the link changes), shared by mail now (the mail arrives with the personal message) and later (then
cancelled); after a session with enrolments, joins and its end, the institution's feedback, the certificates and
their PDF, the organiser's session page (attendance, feedback) and the statistics page and CSV."""

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from billing_world import People
from portal_world import submit
from test_enrolment_pages import PARIS, confirmed, logged_in, people_with_tokens, published_session, visible_text

from api_world import MEMBER_PASSWORD
from contracts.envelope import encode
from contracts.events.catalogue import SessionEnded
from kit import wait_for
from mail import wait_for_mail

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def people(system) -> People:  # type: ignore[no-untyped-def]
    return await people_with_tokens(system, "participation")


@pytest.fixture
async def gateway(system):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.url("gateway"), timeout=30) as client:
        yield client


def enrolment_api(people: People, enrollment_id: str) -> str:
    return f"/api/v1/accounts/{people.manager.account_id}/enrolments/{enrollment_id}"


async def test_the_link_is_shown_revoked_reissued_and_shared(system, people, gateway) -> None:  # type: ignore[no-untyped-def]
    session_id = await published_session(system)
    enrolment = await confirmed(gateway, people.manager.auth, people.manager.account_id, session_id)
    one = enrolment_api(people, enrolment["id"])
    link = await gateway.get(f"{one}/link", headers=people.manager.auth)
    assert link.status_code == 200, link.text
    first = link.json()["path"]
    assert first.startswith("/join/") and len(first) == len("/join/") + 43
    starts = datetime.fromisoformat(enrolment["session"]["starts_at"])
    assert datetime.fromisoformat(link.json()["opens_at"]) == starts - timedelta(minutes=15)
    assert (await gateway.get(f"{one}/link", headers=people.member)).status_code == 200
    assert (await gateway.get(f"{one}/link", headers=people.other.auth)).status_code == 404
    theirs = f"/api/v1/accounts/{people.other.account_id}/enrolments/{enrolment['id']}/link"
    assert (await gateway.get(theirs, headers=people.other.auth)).status_code == 404
    refused = await gateway.post(f"{one}/link/revoke", headers=people.member)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")

    base = system.url("gateway")
    page = f"/account/webvisio/{enrolment['id']}"
    async with logged_in(base, people.manager.email) as browser:
        listed = await browser.get("/account/webvisio")
        row = listed.text.split(f'id="enrolment-{enrolment["id"]}"')[1].split("</tr>")[0]
        assert "disabled" in row and "ouvre le" in visible_text(row) and f'href="{first}"' not in row
        assert f'href="{page}"' in row
        shown = await browser.get(page)
        assert shown.status_code == 200 and first in shown.text
        assert 'class="access" disabled' in shown.text and 'data-copy="participation-link"' in shown.text

        reissued = await submit(browser, page, f"{page}/link/reissue", {})
        assert (reissued.status_code, reissued.headers["location"]) == (303, f"{page}?done=reissued")
        second = (await gateway.get(f"{one}/link", headers=people.manager.auth)).json()["path"]
        assert second != first
        shown = await browser.get(page)
        assert second in shown.text and first not in shown.text

        revoked = await submit(browser, page, f"{page}/link/revoke", {})
        assert (revoked.status_code, revoked.headers["location"]) == (303, f"{page}?done=revoked")
        gone = await gateway.get(f"{one}/link", headers=people.manager.auth)
        assert (gone.status_code, gone.json()["code"]) == (404, "link_not_found")
        assert 'id="no-link"' in (await browser.get(page)).text
        nothing = await gateway.post(
            f"{one}/link/shares",
            json={"recipients": [{"channel": "email", "address": "x@example.org"}]},
            headers=people.manager.auth,
        )
        assert (nothing.status_code, nothing.json()["code"]) == (409, "link_not_found")
        again = await gateway.post(f"{one}/link/reissue", headers=people.manager.auth)
        assert again.status_code == 200 and again.json()["path"] not in (first, second)

        # shared now by mail, with a personal message; a line that is no address is refused first
        recipient = f"share-{uuid.uuid4().hex[:10]}@example.org"
        wrong = await submit(browser, page, f"{page}/shares", {"recipients": "pas une adresse", "when": "now"})
        assert wrong.status_code == 400 and 'id="error-recipients"' in wrong.text
        assert "pas une adresse" in wrong.text  # what was typed is kept
        fields = {"recipients": f"Léa Petit ; {recipient}", "message": "Apportez vos questions !", "when": "now"}
        shared = await submit(browser, page, f"{page}/shares", fields)
        assert shared.status_code == 303 and "done=shared" in shared.headers["location"], shared.text
        mail = await wait_for_mail(system.stack.mail_api, recipient, timeout=60, subject_contains="Webvisio")
        assert "Apportez vos questions" in mail["text"] and again.json()["path"] in mail["text"]

        # later: scheduled in the viewer's zone, listed, then cancelled
        later = (datetime.now(UTC) + timedelta(days=2)).astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
        fields = {"recipients": "06 12 34 56 78", "when": "later", "send_at": later, "timezone": "Europe/Paris"}
        scheduled = await submit(browser, page, f"{page}/shares", fields)
        assert scheduled.status_code == 303 and "done=scheduled" in scheduled.headers["location"], scheduled.text
        shares = (await gateway.get(f"{one}/link/shares", headers=people.manager.auth)).json()["items"]
        sms = next(share for share in shares if share["channel"] == "sms")
        assert (sms["recipient"], sms["status"]) == ("+33612345678", "scheduled")
        assert abs(datetime.fromisoformat(sms["send_at"]) - datetime.now(UTC) - timedelta(days=2)) < timedelta(
            minutes=2
        )
        shown = await browser.get(page)
        assert f'id="share-{sms["id"]}"' in shown.text and recipient in shown.text
        cancelled = await submit(browser, page, f"{page}/shares/{sms['id']}/cancellation", {})
        assert cancelled.status_code == 303 and "done=share_cancelled" in cancelled.headers["location"]
        shares = (await gateway.get(f"{one}/link/shares", headers=people.manager.auth)).json()["items"]
        assert next(share for share in shares if share["id"] == sms["id"])["status"] == "cancelled"

    async with logged_in(base, people.member_email, MEMBER_PASSWORD) as member:
        shown = await member.get(page)
        assert shown.status_code == 200 and 'id="share-list"' not in shown.text
        assert "Révoquer le lien" not in shown.text
        refused_form = await submit(member, page, f"{page}/link/revoke", {})
        assert refused_form.status_code == 403


async def ended_session_with_joins(system: Any, people: People, gateway: httpx.AsyncClient) -> tuple[str, str, str]:
    """A session A and B enrolled in, moved in enrollment's copy to have started 10 minutes ago; two people of A
    join through A's link (B nobody), then it ends (SessionEnded): (session id, A's enrolment id, B's)."""
    session_id = await published_session(system)
    a, b = await asyncio.gather(
        confirmed(gateway, people.manager.auth, people.manager.account_id, session_id),
        confirmed(gateway, people.other.auth, people.other.account_id, session_id),
    )
    await move_session(system, session_id, datetime.now(UTC) - timedelta(minutes=10), timedelta(minutes=50))
    link = (await gateway.get(f"{enrolment_api(people, a['id'])}/link", headers=people.manager.auth)).json()
    token = link["path"].removeprefix("/join/")
    internal = {"X-Internal-Token": system.internal_token}
    async with httpx.AsyncClient(base_url=system.url("enrollment"), headers=internal, timeout=30) as enrollment:
        for name in ("Léa Petit", "Marc Durand", "léa petit "):
            joined = await enrollment.post("/internal/join/attendances", json={"token": token, "name": name})
            assert joined.status_code == 201, joined.text
    async with logged_in(system.url("gateway"), people.manager.email) as browser:
        row = (await browser.get("/account/webvisio")).text.split(f'id="enrolment-{a["id"]}"')[1].split("</tr>")[0]
        assert f'class="button access" href="{link["path"]}"' in row
        assert "3 connexions" in visible_text(row)
    ended = datetime.now(UTC) - timedelta(seconds=5)
    await move_session(system, session_id, ended - timedelta(minutes=40), timedelta(minutes=40))
    producer = AIOKafkaProducer(bootstrap_servers=system.stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        record = encode(SessionEnded(session_id=uuid.UUID(session_id), ended_at=ended), source="test")
        await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()
    certificates = f"{enrolment_api(people, a['id'])}/certificates"

    async def issued() -> bool:
        answer = await gateway.get(certificates, headers=people.manager.auth)
        return answer.status_code == 200 and len(answer.json()["items"]) == 2

    await wait_for(issued, timeout=60, what="the certificates of A's two people")
    return session_id, a["id"], b["id"]


async def move_session(system: Any, session_id: str, starts: datetime, duration: timedelta) -> None:
    """Enrollment's copy of the session, moved (what catalogue's clock would otherwise take days to do)."""
    connection = await asyncpg.connect(system.stack.database_url("enrollment").replace("+asyncpg", ""))
    try:
        await connection.execute(
            "UPDATE sessions SET starts_at = $1, ends_at = $2 WHERE id = $3",
            starts,
            starts + duration,
            uuid.UUID(session_id),
        )
    finally:
        await connection.close()


async def test_after_the_session_feedback_certificates_and_statistics(system, people, gateway) -> None:  # type: ignore[no-untyped-def]
    session_id, a, b = await ended_session_with_joins(system, people, gateway)
    base = system.url("gateway")
    page = f"/account/webvisio/{a}"
    async with logged_in(base, people.manager.email) as browser:
        shown = await browser.get(page)
        assert 'id="feedback-title"' in shown.text and 'name="rating"' in shown.text
        assert "Léa Petit" in shown.text and "Marc Durand" in shown.text
        wrong = await submit(browser, page, f"{page}/feedback", {"rating": "9"})
        assert wrong.status_code == 400 and 'id="error-rating"' in wrong.text
        rated = await submit(browser, page, f"{page}/feedback", {"rating": "4", "comment": "Très clair, merci."})
        assert rated.status_code == 303 and "done=rated" in rated.headers["location"], rated.text
        shown = await browser.get(page)
        assert 'id="feedback-thanks"' in shown.text and 'name="rating"' not in shown.text
        assert "Votre note : 4 / 5" in visible_text(shown.text)
        twice = await gateway.post(f"{enrolment_api(people, a)}/feedback", json={"rating": 5}, headers=people.member)
        assert (twice.status_code, twice.json()["code"]) == (409, "feedback_already_given")
        certificates = (await gateway.get(f"{enrolment_api(people, a)}/certificates", headers=people.member)).json()[
            "items"
        ]
        for certificate in certificates:
            assert f"{page}/certificates/{certificate['id']}/pdf" in shown.text
        pdf = await browser.get(f"{page}/certificates/{certificates[0]['id']}/pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        other_pdf = await browser.get(f"/account/webvisio/{b}/certificates/{certificates[0]['id']}/pdf")
        assert other_pdf.status_code == 404
    api_pdf = await gateway.get(
        f"{enrolment_api(people, a)}/certificates/{certificates[0]['id']}/pdf", headers=people.other.auth
    )
    assert api_pdf.status_code == 404
    attendance = await gateway.get(f"{enrolment_api(people, a)}/attendance", headers=people.member)
    assert attendance.json()["summary"]["people"] == 2

    # the organiser: the session's attendance and feedback, the statistics and their CSV
    back = f"/api/v1/back-office/sessions/{session_id}"
    shown = (await gateway.get(f"{back}/attendance", headers=people.organiser)).json()
    assert shown["summary"]["enrolments_attended"] == 1 and shown["summary"]["attendance_rate"] == 0.5
    profile = await gateway.get(f"/api/v1/accounts/{people.manager.account_id}/profile", headers=people.manager.auth)
    [attended] = [item for item in shown["items"] if item["enrollment_id"] == a]
    assert attended["institution_name"] == profile.json()["name"]  # given by the gateway when it enrolled
    assert (await gateway.get(f"{back}/feedback", headers=people.member)).status_code == 403
    feedback = (await gateway.get(f"{back}/feedback", headers=people.organiser)).json()
    assert (feedback["count"], feedback["average"]) == (1, 4)
    today = datetime.now(UTC).date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    figures = await gateway.get("/api/v1/back-office/statistics", params=span, headers=people.organiser)
    assert figures.status_code == 200, figures.text
    row = next(item for item in figures.json()["sessions"] if item["session_id"] == session_id)
    assert (row["enrolments"], row["attended_enrolments"], row["people"], row["rating_average"]) == (2, 1, 2, 4)
    assert (await gateway.get("/api/v1/back-office/statistics", headers=people.manager.auth)).status_code == 403

    organiser_email = await organiser_of(gateway, people)
    async with logged_in(base, organiser_email) as back_office:
        session_page = await back_office.get(f"/back-office/sessions/{session_id}")
        assert session_page.status_code == 200
        text = visible_text(session_page.text)
        assert 'id="attendance-list"' in session_page.text and "Léa Petit" in text and "Marc Durand" in text
        assert "Note moyenne : 4.0 / 5" in text and "Très clair, merci." in text
        statistics = await back_office.get("/back-office/statistics", params=span)
        assert statistics.status_code == 200
        assert f'data-session="{session_id}"' in statistics.text
        assert statistics.text.count("<svg") == 3 and "<title" in statistics.text and "<desc" in statistics.text
        assert 'href="/back-office/statistics"' in statistics.text  # in the back-office's navigation
        exported = await back_office.get("/back-office/statistics.csv", params=span)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
        assert rows[0][:3] == ["seance", "theme", "debut"]
        [line] = [r for r in rows[1:] if r[0] == "Prise en main de Pronote" and r[5] == "2" and r[8] == "0,50"]
        assert (line[7], line[9], line[10], line[11]) == ("1", "2", "4,00", "1")
        refused = await back_office.get("/back-office/statistics", params={"from": "demain"})
        assert refused.status_code == 400 and 'id="filter-from-error"' in refused.text
    async with logged_in(base, people.manager.email) as browser:
        assert (await browser.get("/back-office/statistics")).status_code == 404


async def organiser_of(gateway: httpx.AsyncClient, people: People) -> str:
    me = await gateway.get("/api/v1/me", headers=people.organiser)
    assert me.status_code == 200, me.text
    return str(me.json()["email"])


def test_csv_cells_never_start_a_formula() -> None:
    from gateway.participation import statistics_csv

    figures = {
        "sessions": [
            {
                "title": '=HYPERLINK("http://evil")',
                "theme_title": "+SUM(A1)",
                "starts_at": "2027-03-18T09:00:00+00:00",
                "status": "ended",
                "capacity": None,
                "enrolments": 3,
                "cancellations": 0,
                "attended_enrolments": 2,
                "attendance_rate": 0.6667,
                "people": 5,
                "rating_average": None,
                "rating_count": 0,
            }
        ]
    }
    rows = list(csv.reader(io.StringIO(statistics_csv(figures).decode("utf-8-sig")), delimiter=";"))
    assert rows[1][:4] == ['\'=HYPERLINK("http://evil")', "'+SUM(A1)", "2027-03-18 10:00", "ended"]
    assert rows[1][8] == "0,67" and rows[1][10] == ""
