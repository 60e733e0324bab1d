"""The billing mails against a real notifier database and the SMTP catcher: planned once per event and
recipient, the PDF fetched from billing when sent and attached, retried while billing does not answer, and
failed at once when billing does not know the document.

Billing's PDF route is played by a tiny HTTP server on 127.0.0.1: a stand-in for another service's answer,
the way billing's internal API gives it (the token checked, 404 for an unknown document)."""

import email
import email.policy
import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select, text, update

from contracts import Envelope
from contracts.events.billing import CreditNoteIssued, InvoiceIssued, PurchaseOrderReceived, TokensDebited
from contracts.examples import example
from notifier.billing_mails import billing_handlers
from notifier.delivery import Policy, claim, deliver
from notifier.documents import BillingDocuments
from notifier.mailer import SmtpPool
from notifier.models import deliveries
from notifier.service import ATTACHMENTS
from notifier.settings import NotifierSettings
from servicekit.db import Database, outbox
from servicekit.migrations import upgrade
from servicekit.outbox import Outbox

pytestmark = pytest.mark.infra

BASE_URL = "https://visiopass.example"
TOKEN = "internal-token-for-the-test"
ORGANISERS = ["compta@visiopass.example", "ops@visiopass.example"]
PDF = b"%PDF-1.7\n% a stand-in for billing's Factur-X invoice\n%%EOF\n"
handle = billing_handlers(NotifierSettings(public_base_url=BASE_URL, back_office_emails=ORGANISERS))


class BillingStandIn:
    """Answers GET /internal/documents/{id}/pdf like billing: 401 without the internal token, 404 for a
    document it does not have, the PDF otherwise."""

    def __init__(self, port: int = 0, documents: dict[uuid.UUID, bytes] | None = None) -> None:
        self.documents = documents or {}
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                parts = self.path.split("/")  # "", "internal", "documents", id, "pdf"
                if self.headers.get("X-Internal-Token") != TOKEN:
                    return self._answer(401, b'{"code": "internal_token_required"}', "application/problem+json")
                try:
                    document = stand_in.documents.get(uuid.UUID(parts[3])) if len(parts) == 5 else None
                except ValueError:
                    document = None
                if document is None:
                    return self._answer(404, b'{"code": "not_found"}', "application/problem+json")
                return self._answer(200, document, "application/pdf")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
async def db(fresh_database):
    database = Database(fresh_database)
    await upgrade(database, "notifier")
    yield database
    await database.dispose()


@pytest.fixture
def billing():
    stand_in = BillingStandIn()
    yield stand_in
    stand_in.stop()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def envelope(event):
    return Envelope(
        id=uuid.uuid4(),
        source="/visiopass/billing",
        type=type(event).ce_type(),
        time=datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
        subject=event.aggregate_id(),
        dataschema=type(event).dataschema(),
        correlation_id=None,
        causation_id=None,
        event=event,
    )


def for_someone(event, language="fr"):
    """The example event, telling an address of this test's own (the catcher's mailbox is shared)."""
    address = f"claire-{uuid.uuid4().hex[:12]}@example.fr"
    return event.model_copy(update={"notice": event.notice.model_copy(update={"email": address, "language": language})})


async def handled(db, *envelopes):
    for each in envelopes:
        async with db.transaction() as session:
            await handle(session, each)
    async with db.transaction() as session:
        return (await session.execute(select(deliveries).order_by(deliveries.c.template, deliveries.c.recipient))).all()


async def send(db, stack, documents) -> int:
    """One pass of the delivery loop; how many deliveries it tried."""
    policy = Policy(sender="Visiopass <no-reply@x.fr>", max_attempts=6)
    async with SmtpPool.from_settings(NotifierSettings(smtp_host="127.0.0.1", smtp_port=stack.ports.smtp)) as mailer:
        rows = await claim(db, policy, datetime.now(UTC))
        await deliver(db, Outbox("notifier"), mailer, rows, policy, documents=documents)
    return len(rows)


async def delivery(db, delivery_id):
    async with db.transaction() as session:
        return (await session.execute(select(deliveries).where(deliveries.c.id == delivery_id))).one()


async def make_due(db) -> None:
    async with db.transaction() as session:
        await session.execute(update(deliveries).values(next_attempt_at=text("now()")))


async def caught(stack, to):
    """The mails the catcher holds for `to`, each parsed from the bytes it received."""
    async with httpx.AsyncClient(base_url=stack.mail_api) as client:
        found = (await client.get("/api/messages", params={"to": to})).json()
        raws = [(await client.get(f"/api/messages/{mail['id']}/raw")).content for mail in found]
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in raws]


def documents_of(billing) -> BillingDocuments:
    return BillingDocuments(billing.url, TOKEN, timeout=5)


async def test_each_billing_event_plans_its_mails_once_with_a_reference_to_the_pdf(db):
    invoice = envelope(for_someone(example(InvoiceIssued)))
    order = envelope(for_someone(example(PurchaseOrderReceived), "en"))
    rows = await handled(db, invoice, order, invoice, order, envelope(example(TokensDebited)))  # redelivered
    planned = {(row.template, row.recipient): row for row in rows}
    assert set(planned) == {
        ("payment_received", invoice.event.notice.email),
        ("purchase_order_received", order.event.notice.email),
        *(("purchase_order_alert", address) for address in ORGANISERS),
    }
    paid = planned[("payment_received", invoice.event.notice.email)]
    assert (paid.event_id, paid.account_id, paid.language, paid.status) == (
        invoice.id,
        invoice.event.account_id,
        "fr",
        "pending",
    )
    assert paid.context[ATTACHMENTS] == [
        {"document_id": str(invoice.event.invoice_id), "account_id": str(invoice.event.account_id),
         "filename": "F2025-000123.pdf"}
    ]  # fmt: skip
    received = planned[("purchase_order_received", order.event.notice.email)]
    assert (received.account_id, received.language) == (order.event.account_id, "en")
    for address in ORGANISERS:
        alert = planned[("purchase_order_alert", address)]
        assert (alert.event_id, alert.account_id, alert.language) == (order.id, None, "fr")


async def test_the_invoice_is_fetched_from_billing_and_attached_when_the_mail_is_sent(db, stack, billing):
    invoice = envelope(for_someone(example(InvoiceIssued)))
    billing.documents[invoice.event.invoice_id] = PDF
    [row] = await handled(db, invoice)
    assert "PDF" not in json.dumps(row.context), "the row holds a reference, never the file"
    assert await send(db, stack, documents_of(billing)) == 1
    sent = await delivery(db, row.id)
    assert (sent.status, sent.attempts, sent.context) == ("sent", 1, None)
    [mail] = await caught(stack, invoice.event.notice.email)
    assert mail["Subject"] == "Paiement reçu : votre facture Visiopass F2025-000123"
    [attached] = list(mail.iter_attachments())
    assert (attached.get_content_type(), attached.get_filename()) == ("application/pdf", "F2025-000123.pdf")
    assert attached.get_content() == PDF
    assert "72,00\u00a0€ TTC" in mail.get_body(("plain",)).get_content()
    assert billing.requests == [f"/internal/documents/{invoice.event.invoice_id}/pdf"]


async def test_a_credit_note_is_attached_under_its_own_number(db, stack, billing):
    note = envelope(for_someone(example(CreditNoteIssued), "en"))
    billing.documents[note.event.credit_note_id] = PDF
    await handled(db, note)
    await send(db, stack, documents_of(billing))
    [mail] = await caught(stack, note.event.notice.email)
    assert [part.get_filename() for part in mail.iter_attachments()] == ["A2025-000007.pdf"]
    assert "€72.00 incl. VAT" in mail.get_body(("plain",)).get_content()


async def test_while_billing_does_not_answer_the_mail_waits_and_goes_once_it_does(db, stack):
    invoice = envelope(for_someone(example(InvoiceIssued)))
    [row] = await handled(db, invoice)
    port = unused_port()  # billing is down: nothing listens there yet
    assert await send(db, stack, BillingDocuments(f"http://127.0.0.1:{port}", TOKEN, timeout=5)) == 1
    waiting = await delivery(db, row.id)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.last_error.startswith("ConnectError")
    assert waiting.context == row.context, "kept for the next attempt"
    assert await caught(stack, invoice.event.notice.email) == [], "never sent without its invoice"

    billing = BillingStandIn(port, {invoice.event.invoice_id: PDF})  # billing is back
    try:
        await make_due(db)
        await send(db, stack, documents_of(billing))
    finally:
        billing.stop()
    sent = await delivery(db, row.id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)
    [mail] = await caught(stack, invoice.event.notice.email)
    assert [part.get_content() for part in mail.iter_attachments()] == [PDF]


async def test_a_refused_token_is_not_taken_for_a_missing_document(db, stack, billing):
    invoice = envelope(for_someone(example(InvoiceIssued)))
    billing.documents[invoice.event.invoice_id] = PDF
    [row] = await handled(db, invoice)
    await send(db, stack, BillingDocuments(billing.url, "wrong-token", timeout=5))
    waiting = await delivery(db, row.id)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert "401" in waiting.last_error


async def test_a_document_billing_does_not_know_fails_the_delivery_at_once(db, stack, billing):
    invoice = envelope(for_someone(example(InvoiceIssued)))
    [row] = await handled(db, invoice)  # billing has no such document
    await send(db, stack, documents_of(billing))
    failed = await delivery(db, row.id)
    assert (failed.status, failed.attempts, failed.context) == ("failed", 1, None)
    assert failed.last_error == f"billing has no document {invoice.event.invoice_id}"  # the reason, for the log
    assert await caught(stack, invoice.event.notice.email) == []
    async with db.transaction() as session:
        values = (await session.execute(select(outbox.c.value))).scalars().all()
    [notice] = [json.loads(value) for value in values]
    assert (notice["type"], notice["delivery_id"], notice["template"]) == (
        "NotificationFailed",
        str(row.id),
        "payment_received",
    )
