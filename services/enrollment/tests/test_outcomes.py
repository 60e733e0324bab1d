"""What a session leaves, on a real PostgreSQL: certificates issued on SessionEnded (one per person who came,
idempotent), their PDF and the check of their code, feedback (once per institution and per person, only after the
end), the statistics, and their internal routes (400 on bad input, 404 for another account's)."""

import importlib.util
import io
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from contracts.base import Notice
from contracts.events.catalogue import SessionEnded, SessionRescheduled
from contracts.events.enrollment import CertificateIssued
from contracts.examples import EXAMPLE_KEYRING
from contracts.secrets import secret_context, unseal
from enrollment import certificates, feedback, links, outcomes_api, service
from enrollment.api import CONTROLLERS
from enrollment.feedback import Rating
from enrollment.models import attendances, enrolments, participation_links
from enrollment.service import EnrolmentRefused
from enrollment.settings import EnrollmentSettings
from enrollment.statistics import statistics
from servicekit.db import Database
from servicekit.migrations import upgrade

_spec = importlib.util.spec_from_file_location("enrollment_tests_world", Path(__file__).with_name("world.py"))
assert _spec and _spec.loader
w = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = w  # Litestar reads the namespace of world's dependency provider
_spec.loader.exec_module(w)
NOW, STARTS_AT = w.NOW, w.STARTS_AT
CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=5)
    await upgrade(database, "enrollment")
    yield database
    await database.dispose()


async def confirmed(db: Database, session_id: uuid.UUID, now: datetime = NOW, **fields: Any) -> Any:
    """A confirmed enrolment (with its participation link), as billing's debit makes it."""
    notice = Notice(email="dir@ecole.fr", name="La directrice", language="fr")
    row = await w.enrol(db, session_id, now, **({"notice": notice} | fields))
    async with db.transaction() as session:
        await service.tokens_debited(session, [row.id], now)
        await session.execute(
            update(enrolments).where(enrolments.c.id == row.id).values(institution_name="École Jaurès")
        )
    return await w.enrolment(db, row.id)


async def joined(
    db: Database, enrolment: Any, name: str, at: datetime, left: datetime | None = None, email: str | None = None
) -> uuid.UUID:
    """A join through the enrolment's link (written as the links' join would)."""
    async with db.transaction() as session:
        link_id = await session.scalar(
            select(participation_links.c.id).where(participation_links.c.enrollment_id == enrolment.id)
        )
        attendance_id = uuid.uuid4()
        await session.execute(
            insert(attendances).values(
                id=attendance_id,
                enrollment_id=enrolment.id,
                session_id=enrolment.session_id,
                link_id=link_id,
                participant_name=name,
                participant_email=email,
                joined_at=at,
                left_at=left,
            )
        )
    return attendance_id


async def ended(db: Database, session_id: uuid.UUID) -> list[dict[str, Any]]:
    """SessionEnded through the consumer's handler; the CertificateIssued events it wrote."""
    before = len(await w.published(db))
    await w.on_session_event(db, SessionEnded(session_id=session_id, ended_at=STARTS_AT + timedelta(hours=1)))
    return [event for event in (await w.published(db))[before:] if event["type"] == "CertificateIssued"]


async def issued(db: Database, enrollment_id: uuid.UUID) -> list[Any]:
    async with db.transaction() as session:
        return await certificates.of_enrolment(session, enrollment_id)


async def refused(db: Database, call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(EnrolmentRefused) as caught:
        async with db.transaction() as session:
            await call(session)
    return caught.value.code


# --- certificates -------------------------------------------------------------------------------------------------


async def test_one_certificate_per_person_who_came_and_none_anew_when_redelivered(db: Database) -> None:
    session_id = await w.new_session(db, theme_title="Pronote")
    came, absent = await confirmed(db, session_id), await confirmed(db, session_id)
    marie = await joined(db, came, "Marie Curie", STARTS_AT - timedelta(minutes=30), STARTS_AT + timedelta(minutes=10))
    await joined(db, came, "  marie CURIE ", STARTS_AT + timedelta(minutes=5), email="marie@ecole.fr")  # still in
    paul = await joined(db, came, "Paul", STARTS_AT + timedelta(minutes=20), STARTS_AT + timedelta(minutes=30))
    events = await ended(db, session_id)
    assert {event["participant_name"] for event in events} == {"Marie Curie", "Paul"}
    assert await issued(db, absent.id) == []
    by_name = {row.participant_name: row for row in await issued(db, came.id)}
    # Marie: from the room's opening (15 min before) to the end (the open join closed at the end): 75 minutes
    assert (by_name["Marie Curie"].attendance_id, by_name["Marie Curie"].duration_minutes) == (marie, 75)
    assert (by_name["Paul"].attendance_id, by_name["Paul"].duration_minutes) == (paul, 10)
    assert by_name["Marie Curie"].participant_email == "marie@ecole.fr"
    assert (by_name["Paul"].institution_name, by_name["Paul"].theme_title) == ("École Jaurès", "Pronote")
    event = next(event for event in events if event["participant_name"] == "Marie Curie")
    certificate = by_name["Marie Curie"]
    assert event["certificate_id"] == str(certificate.id)
    assert event["pdf_url"] == f"/certificates/{certificate.id}.pdf"
    assert CODE.fullmatch(event["verification_code"]) and event["verification_code"] == certificate.code
    assert event["notice"]["email"] == "dir@ecole.fr"
    assert event["participant_email"] == "marie@ecole.fr"
    token = unseal(
        event["feedback_token"], EXAMPLE_KEYRING, secret_context(CertificateIssued, "feedback_token", came.id)
    )
    assert links.token_hash(token) == certificate.feedback_token_hash
    assert await ended(db, session_id) == []  # redelivered: nothing new
    assert len(await issued(db, came.id)) == 2


async def test_two_names_two_certificates_and_a_cancelled_enrolment_none(db: Database) -> None:
    session_id = await w.new_session(db)
    first, second = await confirmed(db, session_id), await confirmed(db, session_id)
    await joined(db, first, "Anne", STARTS_AT)
    await joined(db, second, "Anne", STARTS_AT)  # the same name in another institution: another person
    await joined(db, second, "Bob", STARTS_AT + timedelta(minutes=59, seconds=50))  # a few seconds: 1 minute
    async with db.transaction() as session:
        await session.execute(update(enrolments).where(enrolments.c.id == first.id).values(status="cancelled"))
    await ended(db, session_id)
    assert await issued(db, first.id) == []
    assert sorted((row.participant_name, row.duration_minutes) for row in await issued(db, second.id)) == [
        ("Anne", 60),
        ("Bob", 1),
    ]


async def test_the_pdf_prints_the_certificate_and_its_code_checks_out(db: Database) -> None:
    session_id = await w.new_session(db, title="Prise en main de Pronote", timezone="Europe/Paris")
    came = await confirmed(db, session_id)
    await joined(db, came, "Élodie Durand", STARTS_AT)
    await ended(db, session_id)
    (row,) = await issued(db, came.id)
    pdf = certificates.render(row, "https://visiopass.example/")
    assert pdf.startswith(b"%PDF")
    printed = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for text in ("Élodie Durand", row.code, "Prise en main de Pronote", "École Jaurès", "60 min", "11/03/2027"):
        assert text in printed
    assert f"https://visiopass.example/certificates/verify?code={row.code}" in printed
    async with db.transaction() as session:
        assert (await certificates.verify(session, row.code)).id == row.id
        typed = row.code.replace("-", " ").lower().replace("0", "o").replace("1", "l")
        assert (await certificates.verify(session, typed)).id == row.id
        forged = row.code[:-1] + ("A" if row.code[-1] != "A" else "B")
        assert await certificates.verify(session, forged) is None
        for garbage in ("", "ABCD", "U" * 16, "x" * 1000, "\x00" * 16):
            assert await certificates.verify(session, garbage) is None


def test_codes_are_random_crockford_base32() -> None:
    codes = {certificates.new_code() for _ in range(1000)}
    assert len(codes) == 1000 and all(CODE.fullmatch(code) for code in codes)
    assert certificates.normalised_code("abcd efgh-jkmn pqrs") == "ABCD-EFGH-JKMN-PQRS"


# --- feedback -----------------------------------------------------------------------------------------------------


async def test_feedback_once_per_institution_and_per_person_only_after_the_end(db: Database) -> None:
    session_id = await w.new_session(db)
    came, pending = await confirmed(db, session_id), await w.enrol(db, session_id)
    await joined(db, came, "Marie", STARTS_AT)
    await joined(db, came, "Paul", STARTS_AT)
    good = Rating(5, "Très clair")
    during = STARTS_AT + timedelta(minutes=10)
    code = await refused(db, lambda s: feedback.from_institution(s, came.id, came.account_id, good, during))
    assert code == "session_not_ended"
    assert await refused(db, lambda s: feedback.from_attendee(s, came.id, "Marie", good, during)) == "session_not_ended"
    await ended(db, session_id)
    after = STARTS_AT + timedelta(hours=2)
    with pytest.raises(IntegrityError, match="feedback_rating_range"):  # the table refuses what the edge would
        async with db.transaction() as session:
            await feedback.from_institution(session, came.id, came.account_id, Rating(6), after)
    other = uuid.uuid4()
    assert await refused(db, lambda s: feedback.from_institution(s, came.id, other, good, after)) == "not_found"
    code = await refused(db, lambda s: feedback.from_institution(s, pending.id, pending.account_id, good, after))
    assert code == "not_confirmed"
    async with db.transaction() as session:
        await feedback.from_institution(session, came.id, came.account_id, good, after)
    code = await refused(db, lambda s: feedback.from_institution(s, came.id, came.account_id, Rating(1), after))
    assert code == "feedback_already_given"
    assert await refused(db, lambda s: feedback.from_attendee(s, came.id, "Jean", good, after)) == "not_an_attendee"
    async with db.transaction() as session:
        await feedback.from_attendee(session, came.id, " MARIE ", Rating(4), after)
    assert await refused(db, lambda s: feedback.from_attendee(s, came.id, "marie", good, after)) == (
        "feedback_already_given"
    )
    # the certificate's feedback link designates the same person: already given; Paul's is still open
    marie, paul = sorted(await issued(db, came.id), key=lambda row: row.participant_name)
    key = links.link_rules().key
    marie_token, paul_token = (certificates.feedback_token(key, row.id) for row in (marie, paul))
    async with db.transaction() as session:
        assert (await feedback.by_token(session, marie_token)).given is True
        assert (await feedback.by_token(session, paul_token)).given is False
        assert await feedback.by_token(session, "A" * 43) is None
    code = await refused(db, lambda s: feedback.from_certificate_link(s, marie_token, good, after))
    assert code == "feedback_already_given"
    async with db.transaction() as session:
        await feedback.from_certificate_link(session, paul_token, Rating(2), after)
    assert await refused(db, lambda s: feedback.from_certificate_link(s, paul_token, good, after)) == (
        "feedback_already_given"
    )
    async with db.transaction() as session:
        summary = await feedback.of_session(session, session_id)
    assert (summary["count"], summary["average"]) == (3, round(11 / 3, 2))
    assert summary["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert sorted(item["respondent"] for item in summary["items"]) == ["Marie", "Paul", "institution"]


# --- statistics ---------------------------------------------------------------------------------------------------


async def test_statistics_per_session_per_theme_and_in_total(db: Database) -> None:
    theme, other_theme = uuid.uuid4(), uuid.uuid4()
    first = await w.new_session(db, theme_id=theme, theme_title="Pronote", capacity=10)
    second = await w.new_session(db, theme_id=theme, theme_title="Pronote", starts_at=STARTS_AT + timedelta(days=1))
    third = await w.new_session(db, theme_id=other_theme, theme_title="ENT", starts_at=STARTS_AT + timedelta(days=2))
    await w.new_session(db, starts_at=STARTS_AT + timedelta(days=40))  # outside the period
    a, b, _ = [await confirmed(db, first) for _ in range(3)]
    cancelled = await w.enrol(db, first)
    async with db.transaction() as session:
        await service.cancel_enrolment(session, cancelled.id, cancelled.account_id, w.RULES, NOW)
    await joined(db, a, "Marie", STARTS_AT)
    await joined(db, a, "marie", STARTS_AT + timedelta(minutes=5))
    await joined(db, a, "Paul", STARTS_AT)
    await joined(db, b, "Marie", STARTS_AT)
    d = await confirmed(db, second)
    await joined(db, d, "Zoé", STARTS_AT + timedelta(days=1))
    await ended(db, first)
    after = STARTS_AT + timedelta(days=3)
    async with db.transaction() as session:
        await feedback.from_institution(session, a.id, a.account_id, Rating(5), after)
        await feedback.from_institution(session, b.id, b.account_id, Rating(2), after)
        await feedback.from_attendee(session, a.id, "Paul", Rating(4), after)
        shown = await statistics(session, STARTS_AT - timedelta(days=1), STARTS_AT + timedelta(days=10))
        only = await statistics(session, STARTS_AT - timedelta(days=1), STARTS_AT + timedelta(days=10), other_theme)
    assert [row["session_id"] for row in shown["sessions"]] == [str(first), str(second), str(third)]
    one = shown["sessions"][0]
    assert {key: one[key] for key in ("enrolments", "cancellations", "attended_enrolments", "people")} == {
        "enrolments": 3,
        "cancellations": 1,
        "attended_enrolments": 2,
        "people": 3,
    }
    assert (one["attendance_rate"], one["rating_average"], one["rating_count"]) == (0.6667, 3.67, 3)
    assert (one["status"], one["capacity"], one["theme_title"]) == ("ended", 10, "Pronote")
    assert shown["sessions"][2]["attendance_rate"] is None and shown["sessions"][2]["rating_average"] is None
    pronote = next(row for row in shown["themes"] if row["theme_id"] == str(theme))
    assert (pronote["sessions"], pronote["enrolments"], pronote["attended_enrolments"], pronote["people"]) == (
        2,
        4,
        3,
        4,
    )
    assert (pronote["attendance_rate"], pronote["rating_average"]) == (0.75, 3.67)
    assert [row["theme_title"] for row in shown["themes"]] == ["ENT", "Pronote"]
    assert shown["totals"]["sessions"] == 3
    assert (shown["totals"]["enrolments"], shown["totals"]["cancellations"]) == (4, 1)
    assert [row["session_id"] for row in only["sessions"]] == [str(third)]


# --- the routes ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def client(db: Database):  # type: ignore[no-untyped-def]
    settings = EnrollmentSettings(public_base_url="https://visiopass.example")
    async with w.api_client(db, CONTROLLERS + outcomes_api.CONTROLLERS, settings) as test_client:
        yield test_client


async def past_session(db: Database) -> tuple[uuid.UUID, Any, str]:
    """A session that ended two hours ago (real time), a confirmed enrolment that came, and its link's token."""
    now = datetime.now(UTC)
    session_id = await w.new_session(db, starts_at=now + timedelta(days=10), theme_title="Pronote")
    came = await confirmed(db, session_id, now=now)
    starts_at = now - timedelta(hours=3)
    await w.on_session_event(
        db, SessionRescheduled(session_id=session_id, previous_starts_at=now, starts_at=starts_at, duration_minutes=60)
    )
    await joined(db, came, "Marie", starts_at)
    await ended(db, session_id)
    async with db.transaction() as session:
        link = await links.active_link(session, came.id, links.link_rules(), now)
    assert link is not None
    return session_id, came, link.token


async def test_certificate_and_feedback_routes(client, db: Database) -> None:  # type: ignore[no-untyped-def]
    session_id, came, token = await past_session(db)
    mine, theirs = {"account_id": str(came.account_id)}, {"account_id": str(uuid.uuid4())}
    listed = await client.get(f"/internal/enrolments/{came.id}/certificates", params=mine)
    (item,) = listed.json()["items"]
    assert (item["participant_name"], item["duration_minutes"]) == ("Marie", 60)
    answer = await client.get(f"/internal/enrolments/{came.id}/certificates", params=theirs)
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    pdf = await client.get(f"/internal/certificates/{item['id']}/pdf", params=mine)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert (await client.get(f"/internal/certificates/{item['id']}/pdf")).status_code == 200  # the notifier's fetch
    assert (await client.get(f"/internal/certificates/{item['id']}/pdf", params=theirs)).status_code == 404
    assert (await client.get(f"/internal/certificates/{uuid.uuid4()}/pdf")).status_code == 404
    checked = await client.get("/internal/certificates/verification", params={"code": item["code"].lower()})
    assert checked.status_code == 200
    assert checked.json()["participant_name"] == "Marie" and checked.json()["institution_name"] == "École Jaurès"
    for code in (item["code"][:-1] + ("0" if item["code"][-1] != "0" else "1"), "nope", "\x00" * 16):
        answer = await client.get("/internal/certificates/verification", params={"code": code})
        assert (answer.status_code, answer.json()["code"]) == (404, "certificate_not_found")
    assert (await client.get("/internal/certificates/verification", params={"code": "x" * 201})).status_code == 400
    assert (await client.get("/internal/certificates/verification")).status_code == 400

    rated = await client.post(f"/internal/enrolments/{came.id}/feedback", json=mine | {"rating": 4, "comment": "Bien"})
    assert rated.status_code == 201, rated.text
    again = await client.post(f"/internal/enrolments/{came.id}/feedback", json=mine | {"rating": 4})
    assert (again.status_code, again.json()["code"]) == (409, "feedback_already_given")
    answer = await client.post(f"/internal/enrolments/{came.id}/feedback", json=theirs | {"rating": 4})
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    body = {"token": token, "name": "Jean", "rating": 5}
    answer = await client.post("/internal/join/feedback", json=body)
    assert (answer.status_code, answer.json()["code"]) == (409, "not_an_attendee")
    answer = await client.post("/internal/join/feedback", json=body | {"token": "A" * 43})
    assert (answer.status_code, answer.json()["code"]) == (404, "link_not_found")
    assert (await client.post("/internal/join/feedback", json=body | {"name": "marie"})).status_code == 201
    (certificate,) = await issued(db, came.id)
    person = certificates.feedback_token(links.link_rules().key, certificate.id)
    shown = (await client.get(f"/internal/feedback/{person}")).json()
    assert shown == {"participant_name": "Marie", "session_title": "Prise en main de Pronote", "given": True}
    answer = await client.post(f"/internal/feedback/{person}", json={"rating": 3})
    assert (answer.status_code, answer.json()["code"]) == (409, "feedback_already_given")
    for unknown in ("A" * 43, "short", "%00" * 20):
        answer = await client.get(f"/internal/feedback/{unknown}")
        assert (answer.status_code, answer.json()["code"]) == (404, "feedback_link_not_found")
    summary = (await client.get(f"/internal/sessions/{session_id}/feedback")).json()
    assert (summary["count"], summary["average"]) == (2, 4.5)
    assert (await client.get(f"/internal/sessions/{uuid.uuid4()}/feedback")).status_code == 404
    listed = (await client.get(f"/internal/accounts/{came.account_id}/enrolments", params={"when": "past"})).json()
    assert (listed["items"][0]["feedback_given"], listed["items"][0]["certificates"]) == (True, 1)
    stats = await client.get("/internal/statistics")
    assert stats.status_code == 200 and stats.json()["totals"]["people"] == 1
    assert stats.json()["sessions"][0]["rating_count"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": 2**70},
        {"rating": "five"},
        {"comment": "x" * 2001},
        {"comment": "bad\x00"},
        {"account_id": "not-a-uuid"},
    ],
)
async def test_bad_feedback_is_a_400_problem(client, change) -> None:  # type: ignore[no-untyped-def]
    body = {"account_id": str(uuid.uuid4()), "rating": 3, "token": "A" * 43, "name": "Marie"}
    paths = (
        f"/internal/enrolments/{uuid.uuid4()}/feedback",
        "/internal/join/feedback",
        "/internal/feedback/" + "A" * 43,
    )
    for path in paths:
        answer = await client.post(path, json=body | change)
        if "account_id" in change and "enrolments" not in path:
            continue  # a field these routes do not read
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["code"] in ("invalid_request", "invalid_body")


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2027-02-30"},
        {"from": "yesterday"},
        {"from": "2027-03-01", "to": "2027-03-01"},
        {"from": "2027-03-01", "to": "2020-03-01"},
        {"from": "2020-01-01", "to": "2027-01-01"},
        {"theme_id": "x"},
        {"to": "9" * 40},
    ],
)
async def test_bad_statistics_queries_are_400(client, params) -> None:  # type: ignore[no-untyped-def]
    answer = await client.get("/internal/statistics", params=params)
    assert answer.status_code == 400, answer.text


async def test_join_feedback_refuses_overlong_names_and_tokens(client) -> None:  # type: ignore[no-untyped-def]
    for change in ({"name": "x" * 201}, {"name": ""}, {"name": "a\x00b"}, {"token": "A" * 201}):
        body = {"token": "A" * 43, "name": "Marie", "rating": 3} | change
        assert (await client.post("/internal/join/feedback", json=body)).status_code == 400
