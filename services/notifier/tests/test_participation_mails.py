"""The mails of taking part in a session (notifier.participation_mails): the participation link to the enrolment's
contact, the link shared by a manager (mail or SMS), the thanks with the attendance certificate; the sealed tokens
opened; both languages; the certificate fetched from enrollment (a stand-in HTTP server) and attached when sent."""

import email
import email.policy
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from contracts import Envelope, decode, encode
from contracts.events.catalogue import SessionScheduled
from contracts.events.enrollment import CertificateIssued, Enrolled, ParticipationLinkIssued, ParticipationLinkShared
from contracts.examples import EXAMPLE_KEYRING, EXAMPLE_TOKENS, example
from contracts.secrets import SecretError
from notifier import enrolment_mails as em
from notifier import participation_mails as pm
from notifier.delivery import Policy, claim, deliver
from notifier.documents import BillingDocuments, DocumentNotFound, DocumentSources, EnrollmentDocuments
from notifier.mailer import to_wire
from notifier.models import deliveries
from notifier.service import ATTACHMENTS, ENROLLMENT, render, render_sms
from notifier.settings import NotifierSettings
from notifier.sms import fit
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

BASE_URL = "https://visiopass.example"
SETTINGS = NotifierSettings(public_base_url=BASE_URL, dial_in_phone="01 86 95 00 00")
KEYRING = EXAMPLE_KEYRING
LANGUAGES = ["fr", "en"]
START = datetime(2027, 3, 20, 13, 0, tzinfo=UTC)
ISSUED, SHARED = example(ParticipationLinkIssued), example(ParticipationLinkShared)
CERTIFICATE = example(CertificateIssued).model_copy(update={"participant_email": "paul.durand@example.fr"})
JOIN_TOKEN = EXAMPLE_TOKENS[("ParticipationLinkIssued", "join_token")]
SHARED_TOKEN = EXAMPLE_TOKENS[("ParticipationLinkShared", "join_token")]
FEEDBACK_TOKEN = EXAMPLE_TOKENS[("CertificateIssued", "feedback_token")]
PDF = b"%PDF-1.7\n% a stand-in for enrollment's certificate\n%%EOF\n"
TOKEN = "internal-token-for-the-test"


def session_row(**changes: Any) -> Any:
    values = {"session_id": ISSUED.session_id, "title": "Prise en main de Pronote", "starts_at": START}
    return SimpleNamespace(**(values | {"timezone": "America/Martinique", "duration_minutes": 90} | changes))


def copy_row(status: str = "active", email: str | None = "claire@example.fr", language: str = "fr") -> Any:
    return SimpleNamespace(
        enrollment_id=ISSUED.enrollment_id, status=status, email=email, name="Claire Martin", language=language
    )


def mails(event: Any, copy: Any = None, session: Any = None) -> list[Any]:
    return pm.participation_mails(event, copy, session or session_row(), SETTINGS, KEYRING)


# --- the participation link ----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_link_goes_to_the_enrolments_contact_with_the_opened_token(language: str) -> None:
    (mail,) = mails(ISSUED, copy_row(language=language))
    assert (mail.template, mail.recipient, mail.language, mail.channel, mail.bulk) == (
        "participation_link",
        "claire@example.fr",
        language,
        "email",
        True,  # every institution of the session at once: behind transactional mail
    )
    assert mail.variables["link"] == f"{BASE_URL}/join/{JOIN_TOKEN}"
    assert ISSUED.join_token not in str(mail.variables), "never the sealed value"
    assert "09:00" in mail.variables["starts_at"], "in the session's own zone (Martinique)"
    rendered = render(mail.template, language, mail.variables)
    for part in (rendered.text, rendered.html):
        assert f"{BASE_URL}/join/{JOIN_TOKEN}" in part
        assert "https://test.webrtc.org/" in part and "01 86 95 00 00" in part and "01 84 80 00 00" in part
        assert f"{BASE_URL}/account/webvisio" in part
        assert "15 minutes" in part
    assert "Prise en main de Pronote" in rendered.subject
    hours = {"fr": "du lundi au vendredi, 08:30\u201312:00 et 13:30\u201317:00", "en": "Monday to Friday"}
    assert hours[language] in rendered.text
    assert ("Mes Webvisio" if language == "fr" else "My Webvisio") in rendered.text


def test_without_a_dial_in_number_the_phone_is_not_told() -> None:
    settings = NotifierSettings(public_base_url=BASE_URL)
    (mail,) = pm.participation_mails(ISSUED, copy_row(), session_row(), settings, KEYRING)
    assert mail.variables["dial_in_phone"] == ""
    assert "téléphone au" not in render(mail.template, "fr", mail.variables).text


@pytest.mark.parametrize(
    ("copy", "why"),
    [(None, "no copy"), (copy_row(status="cancelled"), "cancelled"), (copy_row(email=None), "no contact")],
)
def test_no_copy_of_an_active_enrolment_with_a_contact_no_mail_and_it_is_logged(
    copy: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "notifier.participation_mails"):
        assert mails(ISSUED, copy) == []
    assert why in caplog.text and str(ISSUED.enrollment_id) in caplog.text


def test_a_link_for_a_session_not_copied_yet_is_tried_again() -> None:
    with pytest.raises(LookupError):
        pm.participation_mails(ISSUED, copy_row(), None, SETTINGS, KEYRING)


def test_a_token_that_does_not_open_fails_the_event() -> None:
    moved = ISSUED.model_copy(update={"enrollment_id": uuid.uuid4()})  # bound to another enrolment
    with pytest.raises(SecretError):
        mails(moved, copy_row())
    with pytest.raises(SecretError):
        pm.participation_mails(ISSUED, copy_row(), session_row(), SETTINGS, None)


# --- the link shared ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_shared_link_by_mail_quotes_the_personal_message_escaped(language: str) -> None:
    typed = "Paul, voici le lien <script>alert(1)</script> & à jeudi !\nSecond line"
    event = SHARED.model_copy(update={"language": language, "message": typed})
    (mail,) = mails(event)
    assert (mail.template, mail.recipient, mail.language, mail.channel, mail.bulk) == (
        "participation_link_shared",
        "paul.durand@example.fr",
        language,
        "email",
        False,
    )
    assert mail.variables["link"] == f"{BASE_URL}/join/{SHARED_TOKEN}"
    rendered = render(mail.template, language, mail.variables)
    assert "Claire Martin" in rendered.text and "Prise en main de Pronote" in rendered.subject
    assert "Claire Martin" not in rendered.subject, "a typed name stays out of the subject"
    assert "> Paul, voici le lien <script>alert(1)</script> & à jeudi !\n> Second line" in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; à jeudi !" in rendered.html
    assert "<blockquote" in rendered.html
    for part in (rendered.text, rendered.html):
        assert f"{BASE_URL}/join/{SHARED_TOKEN}" in part


def test_a_shared_link_without_sender_or_message_still_reads() -> None:
    event = SHARED.model_copy(update={"sender_name": None, "message": None, "recipient_name": None})
    (mail,) = mails(event)
    rendered = render(mail.template, "fr", mail.variables)
    assert rendered.text.startswith("Bonjour,") and "Votre établissement vous transmet" in rendered.text
    assert "<blockquote" not in rendered.html and "\n> " not in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_shared_link_by_sms_is_an_sms_with_the_link_before_a_shortened_message(language: str) -> None:
    long = "Bonjour Paul, " + "voici quelques précisions sur la séance de jeudi " * 10
    event = SHARED.model_copy(
        update={"channel": "sms", "recipient": "+33612345678", "language": language, "message": long}
    )
    (mail,) = mails(event)
    assert (mail.template, mail.recipient, mail.channel) == ("participation_link_shared", "+33612345678", "sms")
    assert len(mail.variables["message"]) <= pm.SMS_MESSAGE_CHARACTERS and mail.variables["message"].endswith("…")
    text = render_sms(mail.template, language, mail.variables)
    assert text.startswith("Visiopass") and "Claire Martin" in text and "Prise en main de Pronote" in text
    assert f"{BASE_URL}/join/{SHARED_TOKEN}" in fit(text, SETTINGS.sms_max_segments), "the link survives the cut"


def test_a_number_no_sms_can_reach_plans_nothing(caplog: pytest.LogCaptureFixture) -> None:
    event = SHARED.model_copy(update={"channel": "sms", "recipient": "+3361"})
    with caplog.at_level(logging.WARNING, "notifier.participation_mails"):
        assert mails(event) == []
    assert str(SHARED.share_id) in caplog.text


# --- the thanks and the certificate ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_thanks_go_to_the_participant_with_the_certificate_and_the_feedback_link(language: str) -> None:
    event = CERTIFICATE.model_copy(update={"notice": CERTIFICATE.notice.model_copy(update={"language": language})})
    (mail,) = mails(event)
    assert (mail.template, mail.recipient, mail.language, mail.bulk) == (
        "session_thanks",
        "paul.durand@example.fr",
        language,
        True,
    )
    stem = "attestation" if language == "fr" else "certificate"
    assert mail.variables[ATTACHMENTS] == [
        {
            "document_id": str(CERTIFICATE.certificate_id),
            "account_id": str(CERTIFICATE.account_id),
            "filename": f"{stem}-7KQ2-M9XD-4TRB-H3WF.pdf",
            "source": ENROLLMENT,
        }
    ]
    assert mail.variables["feedback_link"] == f"{BASE_URL}/feedback/{FEEDBACK_TOKEN}"
    assert CERTIFICATE.feedback_token not in str(mail.variables)
    rendered = render(mail.template, language, {k: v for k, v in mail.variables.items() if k != ATTACHMENTS})
    for part in (rendered.text, rendered.html):
        assert "Paul Durand" in part and "7KQ2-M9XD-4TRB-H3WF" in part
        assert f"{BASE_URL}/certificates/verify?code=7KQ2-M9XD-4TRB-H3WF" in part
        assert f"{BASE_URL}/feedback/{FEEDBACK_TOKEN}" in part


def test_without_a_participant_address_the_thanks_go_to_the_enrolments_contact() -> None:
    (mail,) = mails(CERTIFICATE.model_copy(update={"participant_email": None}))
    assert (mail.recipient, mail.language) == ("claire.martin@example.fr", "fr")
    assert mails(CERTIFICATE.model_copy(update={"participant_email": None, "notice": None})) == []


def test_without_a_feedback_token_or_code_there_is_no_such_line() -> None:
    event = CERTIFICATE.model_copy(update={"feedback_token": None, "verification_code": None})
    (mail,) = pm.participation_mails(event, None, session_row(), SETTINGS, None)  # nothing to open: no keyring needed
    assert (mail.variables["feedback_link"], mail.variables["verify_link"]) == ("", "")
    rendered = render(mail.template, "fr", {k: v for k, v in mail.variables.items() if k != ATTACHMENTS})
    assert "/feedback/" not in rendered.text + rendered.html and "verify" not in rendered.text + rendered.html
    assert mail.variables[ATTACHMENTS][0]["filename"] == "attestation.pdf"


# --- enrollment's certificates, fetched -----------------------------------------------------------------------


class EnrollmentStandIn:
    """Answers GET /internal/certificates/{id}/pdf like enrollment: 401 without the internal token, 404 for a
    certificate it does not have, the PDF otherwise."""

    def __init__(self, certificates: dict[uuid.UUID, bytes]) -> None:
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                parts = self.path.split("/")  # "", "internal", "certificates", id, "pdf"
                found = None
                if self.headers.get("X-Internal-Token") != TOKEN:
                    status, body = 401, b"{}"
                else:
                    if len(parts) == 5 and parts[1:3] == ["internal", "certificates"] and parts[4] == "pdf":
                        found = certificates.get(uuid.UUID(parts[3]))
                    status, body = (200, found) if found else (404, b'{"code": "not_found"}')
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def enrollment():  # type: ignore[no-untyped-def]
    stand_in = EnrollmentStandIn({CERTIFICATE.certificate_id: PDF})
    yield stand_in
    stand_in.stop()


async def test_a_certificate_is_fetched_from_enrollment_behind_the_internal_token(enrollment: Any) -> None:
    settings = NotifierSettings(enrollment_url=enrollment.url, internal_token=TOKEN)
    certificates = EnrollmentDocuments.from_settings(settings)
    assert await certificates.pdf(CERTIFICATE.certificate_id, ENROLLMENT) == PDF
    assert enrollment.requests == [f"/internal/certificates/{CERTIFICATE.certificate_id}/pdf"]
    with pytest.raises(DocumentNotFound, match="enrollment has no document"):
        await certificates.pdf(uuid.uuid4(), ENROLLMENT)
    with pytest.raises(Exception, match="401"):  # a refused token is not a missing certificate: tried again
        await EnrollmentDocuments(enrollment.url, "wrong", timeout=5).pdf(CERTIFICATE.certificate_id, ENROLLMENT)
    with pytest.raises(RuntimeError):  # a billing reference never goes to enrollment
        await certificates.pdf(CERTIFICATE.certificate_id)


async def test_the_sources_send_each_reference_to_its_owner(enrollment: Any) -> None:
    sources = DocumentSources(
        BillingDocuments("http://127.0.0.1:9", TOKEN, timeout=1), EnrollmentDocuments(enrollment.url, TOKEN, timeout=5)
    )
    assert await sources.pdf(CERTIFICATE.certificate_id, ENROLLMENT) == PDF
    with pytest.raises(RuntimeError, match="no document source"):
        await sources.pdf(CERTIFICATE.certificate_id, "catalogue")
    assert NotifierSettings().enrollment_url == "http://127.0.0.1:8104"


def test_the_support_line_is_checked_when_the_notifier_starts() -> None:
    with pytest.raises(ValueError, match="support hours"):
        NotifierSettings(support_hours="17:00-08:30")
    with pytest.raises(ValueError, match="support days"):
        NotifierSettings(support_days="weekdays")
    assert pm.support_hours("sat", "09:00-12:00", "fr") == "samedi, 09:00\u201312:00"


# --- on a real database: planned by the enrollment consumer, and sent ----------------------------------------


@pytest.fixture
async def db(fresh_database):  # type: ignore[no-untyped-def]
    database = Database(fresh_database, pool_size=4)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


def envelope(event: Any) -> Envelope:
    """`event` as the consumer reads it from Kafka."""
    record = encode(event, source="/visiopass/test")
    return decode(record.topic, record.key, record.value, record.headers)


class Caught:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)


class Sms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, text: str, reference: str) -> None:
        self.sent.append((to, text))


@pytest.mark.infra
async def test_the_enrollment_consumer_plans_and_sends_each_participation_message(
    db: Database, enrollment: Any
) -> None:
    settings = NotifierSettings(public_base_url=BASE_URL, event_secret_keys=KEYRING.to_text())
    on_session, on_enrolment = em.session_handlers(settings), em.enrollment_handlers(settings)
    scheduled = SessionScheduled(
        session_id=ISSUED.session_id,
        theme_id=uuid.uuid4(),
        title="Prise en main de Pronote",
        starts_at=START,
        duration_minutes=60,
        capacity=10,
        provider="jitsi",
    )
    sms_share = SHARED.model_copy(update={"channel": "sms", "recipient": "+33612345678", "share_id": uuid.uuid4()})
    for handler, event in [
        (on_session, scheduled),
        (on_enrolment, example(Enrolled)),
        (on_enrolment, ISSUED),
        (on_enrolment, SHARED),
        (on_enrolment, sms_share),
        (on_enrolment, CERTIFICATE),
    ]:
        async with db.transaction() as session:
            await handler(session, envelope(event))
    async with db.transaction() as session:
        planned = (
            await session.execute(select(deliveries).where(deliveries.c.template != "enrolment_confirmed"))
        ).all()
    assert sorted((row.template, row.recipient, row.channel, row.priority) for row in planned) == [
        ("participation_link", "claire.martin@example.fr", "email", 1),
        ("participation_link_shared", "+33612345678", "sms", 0),
        ("participation_link_shared", "paul.durand@example.fr", "email", 0),
        ("session_thanks", "paul.durand@example.fr", "email", 1),
    ]

    mailer, sms, policy = Caught(), Sms(), Policy(sender="Visiopass <no-reply@visiopass.example>")
    documents = EnrollmentDocuments(enrollment.url, TOKEN, timeout=5)
    rows = await claim(db, policy, datetime.now(UTC) + timedelta(seconds=1))
    await deliver(db, Outbox("notifier"), mailer, rows, policy, documents=documents, sms=sms)
    sent = {
        (m["To"], m["Subject"]): email.message_from_bytes(to_wire(m), policy=email.policy.default)
        for m in mailer.messages
    }
    [thanks] = [m for (to, subject), m in sent.items() if subject.startswith("Merci")]
    [attached] = list(thanks.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("attestation-7KQ2-M9XD-4TRB-H3WF.pdf", PDF)
    [link] = [m for (to, subject), m in sent.items() if subject.startswith("Votre lien")]
    assert link["To"] == "claire.martin@example.fr"
    assert f"{BASE_URL}/join/{JOIN_TOKEN}" in link.get_body(("plain",)).get_content()
    [(to, text)] = sms.sent
    assert to == "+33612345678" and f"{BASE_URL}/join/{SHARED_TOKEN}" in text
    assert len(mailer.messages) == 4  # with the confirmation
