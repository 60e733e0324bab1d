"""The mails of an enrolment's life (notifier.enrolment_mails): every template in both languages, who is told what
for each event, the session-wide mails to each active enrolment, and the calendar invitation a sent mail carries
(parsed back with icalendar: METHOD, UID, SEQUENCE)."""

import uuid
from datetime import UTC, datetime, timedelta
from email.message import Message
from types import SimpleNamespace
from typing import Any

import icalendar
import pytest
from sqlalchemy import select

from contracts import Envelope
from contracts.base import Notice
from contracts.events.catalogue import SessionCancelled, SessionRescheduled, SessionScheduled, SessionStarting
from contracts.events.enrollment import Enrolled, EnrollmentCancelled, EnrollmentRejected, WaitingListPlaceOffered
from notifier import enrolment_mails as em
from notifier.delivery import Policy, claim, deliver
from notifier.invitations import uid
from notifier.models import deliveries, enrolments
from notifier.service import INVITATION, REMINDERS, local_datetime, render
from notifier.settings import NotifierSettings
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

BASE_URL = "https://visiopass.example"
SETTINGS = NotifierSettings(public_base_url=BASE_URL)
LANGUAGES = ["fr", "en"]
START = datetime(2027, 3, 20, 13, 0, tzinfo=UTC)
SESSION_ID = uuid.UUID("0d7e5f2a-1b3c-4d5e-8f90-a1b2c3d4e5f6")
ACCOUNT_ID = uuid.UUID("a0000000-0000-4000-8000-000000000001")
TEMPLATES = [
    "enrolment_confirmed",
    "enrolment_rejected",
    "enrolment_cancelled",
    "waiting_list_place_offered",
    "session_rescheduled",
    "session_reminder_j7",
    "session_reminder_h1",
]


def notice(language: str = "fr", email: str = "claire@example.fr") -> Notice:
    return Notice(email=email, name="Claire Martin", language=language)


def session_row(**changes: Any) -> Any:
    values = {
        "session_id": SESSION_ID,
        "title": "Prise en main de Pronote",
        "starts_at": START,
        "duration_minutes": 90,
        "timezone": "America/Martinique",
        "status": "published",
        "invitation_sequence": 2,
        "cancel_reason": None,
    }
    return SimpleNamespace(**(values | changes))


def copy_row(email: str = "claire@example.fr", language: str = "fr") -> Any:
    return SimpleNamespace(
        enrollment_id=uuid.uuid4(),
        session_id=SESSION_ID,
        account_id=ACCOUNT_ID,
        email=email,
        name="",
        language=language,
    )


def ids(**more: Any) -> dict[str, Any]:
    return {"enrollment_id": uuid.uuid4(), "account_id": ACCOUNT_ID, "session_id": SESSION_ID} | more


# --- the mails each event asks for ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_confirmation_tells_the_requester_in_their_language_with_the_invitation_to_make(language: str) -> None:
    event = Enrolled(**ids(notice=notice(language)))
    (mail,) = em.enrolled_mails(event, session_row(), SETTINGS)
    assert (mail.template, mail.language, mail.recipient) == ("enrolment_confirmed", language, "claire@example.fr")
    # in the session's own zone (Martinique: 09:00), the reader's way
    assert mail.variables["starts_at"] == local_datetime(START, language, "America/Martinique")
    assert "09:00" in mail.variables["starts_at"]
    assert mail.variables["link"] == f"{BASE_URL}/account/webvisio"
    terms = mail.variables[INVITATION]
    assert (terms["method"], terms["sequence"], terms["enrollment_id"]) == ("REQUEST", 2, str(event.enrollment_id))
    assert terms["ends_at"] == (START + timedelta(minutes=90)).isoformat()
    assert em.enrolled_mails(Enrolled(**ids()), session_row(), SETTINGS) == []  # nobody named: no mail
    with pytest.raises(LookupError):  # a session the notifier has not heard of yet: tried again later
        em.enrolled_mails(event, None, SETTINGS)


@pytest.mark.parametrize(
    ("reason", "link"),
    [("insufficient_balance", "/account/tokens"), ("account_unverified", "/planning"), ("session_full", "/planning")],
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_rejection_says_why_in_words_and_leads_to_tokens_when_none_are_left(
    language: str, reason: str, link: str
) -> None:
    event = EnrollmentRejected(**ids(reason=reason, notice=notice(language)))
    (mail,) = em.rejected_mails(event, session_row(), SETTINGS)
    rendered = render(mail.template, mail.language, mail.variables)
    assert f"{BASE_URL}{link}" in rendered.text and f'href="{BASE_URL}{link}"' in rendered.html
    words = {
        ("fr", "insufficient_balance"): "plus assez de jetons",
        ("en", "insufficient_balance"): "not have enough tokens",
        ("fr", "account_unverified"): "pas encore vérifié",
        ("en", "account_unverified"): "not verified yet",
        ("fr", "session_full"): "complète",
        ("en", "session_full"): "is full",
    }
    assert words[language, reason] in rendered.text
    assert reason not in rendered.text  # never the code


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_cancellation_withdraws_the_invitation_above_the_last_request(language: str) -> None:
    event = EnrollmentCancelled(**ids(refund=True, notice=notice(language)))
    (mail,) = em.cancelled_mails(event, session_row(), SETTINGS, notice=event.notice, invited=True)
    assert (mail.variables[INVITATION]["method"], mail.variables[INVITATION]["sequence"]) == ("CANCEL", 3)
    assert mail.variables["refund"] == "yes"
    # the session cancelled by its organiser: the copy already counted it, and its reason is told
    by_organiser = EnrollmentCancelled(**ids(refund=True, reason="session_cancelled", notice=notice(language)))
    cancelled = session_row(status="cancelled", invitation_sequence=3, cancel_reason="Intervenant malade")
    (mail,) = em.cancelled_mails(by_organiser, cancelled, SETTINGS, notice=by_organiser.notice, invited=True)
    assert mail.variables[INVITATION]["sequence"] == 3
    assert "Intervenant malade" in render(mail.template, language, mail.variables).text
    # never confirmed: nothing to withdraw from a calendar
    (mail,) = em.cancelled_mails(event, session_row(), SETTINGS, notice=event.notice, invited=False)
    assert INVITATION not in mail.variables
    assert em.cancelled_mails(event, session_row(), SETTINGS, notice=None, invited=True) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_offered_place_is_held_until_a_time_in_the_sessions_zone(language: str) -> None:
    hold = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
    event = WaitingListPlaceOffered(
        entry_id=uuid.uuid4(),
        account_id=ACCOUNT_ID,
        session_id=SESSION_ID,
        offered_at=hold - timedelta(days=1),
        hold_until=hold,
        notice=notice(language),
    )
    (mail,) = em.offered_mails(event, session_row(), SETTINGS)
    assert mail.variables["hold_until"] == local_datetime(hold, language, "America/Martinique")
    text = render(mail.template, language, mail.variables).text
    assert mail.variables["hold_until"] in text and f"{BASE_URL}/account/webvisio" in text


def test_session_wide_mails_go_to_each_active_enrolment_in_its_language() -> None:
    active = [copy_row("a@example.fr", "fr"), copy_row("b@example.org", "en")]
    moved = SessionRescheduled(
        session_id=SESSION_ID, previous_starts_at=START - timedelta(days=1), starts_at=START, duration_minutes=90
    )
    planned = em.rescheduled_mails(moved, session_row(invitation_sequence=4), active, SETTINGS)
    assert [(m.recipient, m.language, m.template) for _, m in planned] == [
        ("a@example.fr", "fr", "session_rescheduled"),
        ("b@example.org", "en", "session_rescheduled"),
    ]
    assert {(m.variables[INVITATION]["method"], m.variables[INVITATION]["sequence"]) for _, m in planned} == {
        ("REQUEST", 4)
    }
    assert [e.enrollment_id for e, _ in planned] == [row.enrollment_id for row in active]
    for offset, template in [("J-7", "session_reminder_j7"), ("H-1", "session_reminder_h1")]:
        starting = SessionStarting(
            session_id=SESSION_ID, offset=offset, starts_at=START, ends_at=START + timedelta(minutes=90)
        )
        reminders = em.reminder_mails(starting, session_row(), active, SETTINGS)
        assert [m.template for _, m in reminders] == [template, template]
        assert template in REMINDERS  # bulk, with the unsubscribe link, skipped for those who opted out
    for offset in ("J-2", "open"):
        starting = SessionStarting(session_id=SESSION_ID, offset=offset, starts_at=START, ends_at=START)
        assert em.reminder_mails(starting, session_row(), active, SETTINGS) == []


# --- every template, in both languages ------------------------------------------------------------------------


def variables_of(template: str, language: str) -> dict[str, Any]:
    base = {
        "name": "Claire Martin",
        "title": "Prise en main de Pronote",
        "starts_at": local_datetime(START, language, "Europe/Paris"),
        "duration": "90",
        "link": f"{BASE_URL}/account/webvisio",
    }
    return base | {
        "enrolment_rejected": {
            "reason": "insufficient_balance",
            "tokens_link": f"{BASE_URL}/account/tokens",
            "planning_link": f"{BASE_URL}/planning",
        },
        "enrolment_cancelled": {
            "reason": "requested",
            "refund": "",
            "cancel_reason": "",
            "planning_link": f"{BASE_URL}/planning",
        },
        "waiting_list_place_offered": {"hold_until": local_datetime(START, language)},
        "session_rescheduled": {"previous_starts_at": local_datetime(START - timedelta(days=1), language)},
    }.get(template, {})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_in_both_languages_with_absolute_links(template: str, language: str) -> None:
    rendered = render(template, language, variables_of(template, language))
    assert rendered.subject and "Claire Martin" in rendered.text and "Claire Martin" in rendered.html
    assert "Prise en main de Pronote" in rendered.subject + rendered.text
    assert 'href="/' not in rendered.html and f'href="{BASE_URL}/' in rendered.html
    assert "{" not in rendered.text and "{" not in rendered.html
    if template in REMINDERS:
        unsubscribed = render(template, language, variables_of(template, language) | {"unsubscribe_url": "https://u"})
        assert "https://u" in unsubscribed.text and 'href="https://u"' in unsubscribed.html


def test_the_reasons_are_told_differently_per_cancellation_and_refund() -> None:
    variables = variables_of("enrolment_cancelled", "fr")
    late = render("enrolment_cancelled", "fr", variables).text
    refunded = render("enrolment_cancelled", "fr", variables | {"refund": "yes"}).text
    organiser = render(
        "enrolment_cancelled", "fr", variables | {"reason": "session_cancelled", "cancel_reason": "Grève"}
    ).text
    assert "n'est pas recrédité" in late and "a été recrédité" in refunded
    assert "L'organisateur a annulé la Webvisio" in organiser and "Motif : Grève" in organiser


# --- on a real database: the copy, the plan, and the mail as sent -----------------------------------------------


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=4)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


def envelope(event: Any, at: datetime = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        source="/visiopass/test",
        type=type(event).ce_type(),
        time=at,
        subject=event.aggregate_id(),
        dataschema=type(event).dataschema(),
        correlation_id=None,
        causation_id=None,
        event=event,
    )


class Caught:
    """A mailer that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)


async def handle(db: Database, handler: Any, event: Any) -> None:
    async with db.transaction() as session:
        await handler(session, envelope(event))


async def send_all(db: Database) -> list[Message]:
    mailer, policy = Caught(), Policy(sender="Visiopass <no-reply@visiopass.example>")
    rows = await claim(db, policy, datetime.now(UTC) + timedelta(seconds=1))
    await deliver(db, Outbox("notifier"), mailer, rows, policy)
    return mailer.messages


def calendar_of(message: Message) -> icalendar.Calendar:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


@pytest.mark.infra
async def test_the_confirmed_and_cancelled_mails_carry_the_invitation_and_its_withdrawal(db: Database) -> None:
    on_session, on_enrolment = em.session_handlers(SETTINGS), em.enrollment_handlers(SETTINGS)
    scheduled = SessionScheduled(
        session_id=uuid.uuid4(),
        theme_id=uuid.uuid4(),
        title="Prise en main de Pronote",
        starts_at=START,
        duration_minutes=60,
        capacity=10,
        provider="jitsi",
    )
    await handle(db, on_session, scheduled)
    enrolled = Enrolled(
        enrollment_id=uuid.uuid4(), account_id=ACCOUNT_ID, session_id=scheduled.session_id, notice=notice("en")
    )
    await handle(db, on_enrolment, enrolled)
    await handle(db, on_enrolment, Enrolled(**ids(session_id=scheduled.session_id)))  # named nobody: copied, no mail
    (confirmed,) = await send_all(db)
    assert confirmed["To"] == "claire@example.fr" and confirmed["Content-Language"] == "en"
    calendar = calendar_of(confirmed)
    (vevent,) = calendar.walk("VEVENT")
    assert (str(calendar["METHOD"]), str(vevent["UID"]), int(vevent["SEQUENCE"])) == (
        "REQUEST",
        uid(enrolled.enrollment_id),
        0,
    )
    assert vevent.decoded("DTSTART") == START and str(vevent["ATTENDEE"]) == "mailto:claire@example.fr"

    # rescheduled: each active enrolment naming someone gets the invitation taken over
    moved = SessionRescheduled(
        session_id=scheduled.session_id,
        previous_starts_at=START,
        starts_at=START + timedelta(days=1),
        duration_minutes=60,
        timezone="Europe/Paris",
    )
    await handle(db, on_session, moved)
    (rescheduled,) = await send_all(db)
    (vevent,) = calendar_of(rescheduled).walk("VEVENT")
    assert (int(vevent["SEQUENCE"]), vevent.decoded("DTSTART")) == (1, START + timedelta(days=1))

    # a reminder goes as bulk to the same contact
    starting = SessionStarting(
        session_id=scheduled.session_id, offset="H-1", starts_at=moved.starts_at, ends_at=moved.starts_at
    )
    await handle(db, on_session, starting)
    (reminder,) = await send_all(db)
    assert reminder["List-Unsubscribe"] is None or reminder["List-Unsubscribe"].startswith("<http")

    cancelled = EnrollmentCancelled(
        enrollment_id=enrolled.enrollment_id,
        account_id=ACCOUNT_ID,
        session_id=scheduled.session_id,
        refund=True,
        notice=notice("en"),
    )
    await handle(db, on_enrolment, cancelled)
    (withdrawn,) = await send_all(db)
    calendar = calendar_of(withdrawn)
    (vevent,) = calendar.walk("VEVENT")
    assert (str(calendar["METHOD"]), str(vevent["UID"]), int(vevent["SEQUENCE"]), str(vevent["STATUS"])) == (
        "CANCEL",
        uid(enrolled.enrollment_id),
        2,
        "CANCELLED",
    )
    async with db.transaction() as session:
        statuses = dict((await session.execute(select(enrolments.c.enrollment_id, enrolments.c.status))).tuples().all())
        templates = sorted((await session.execute(select(deliveries.c.template))).scalars())
    assert statuses[enrolled.enrollment_id] == "cancelled"
    assert templates == ["enrolment_cancelled", "enrolment_confirmed", "session_reminder_h1", "session_rescheduled"]

    # the session cancelled afterwards: nobody active is left to tell
    await handle(db, on_session, SessionCancelled(session_id=scheduled.session_id, reason="Grève", cancelled_at=START))
    assert await send_all(db) == []


@pytest.mark.infra
async def test_a_closed_accounts_enrolment_contacts_are_forgotten(db: Database) -> None:
    from notifier.service import forget_account

    on_enrolment = em.enrollment_handlers(SETTINGS)
    await handle(db, on_enrolment, Enrolled(**ids()))  # copied (no session copy needed: it names nobody)
    async with db.transaction() as session:
        assert len((await session.execute(select(enrolments))).all()) == 1
    async with db.transaction() as session:
        await forget_account(session, ACCOUNT_ID, except_event=uuid.uuid4())
    async with db.transaction() as session:
        assert (await session.execute(select(enrolments))).all() == []
