"""What the notifier does: plan one delivery per (event, template, recipient), render it, send it, log it.

A mail may attach documents (billing's invoices and credit notes). The delivery's row holds a reference to each
(`attachment`), never the file: the file is fetched from its owner when the mail is sent, at every attempt. A
document its owner cannot serve now fails the attempt like an unreachable SMTP server (tried again later); one
its owner does not know fails the delivery at once (`Undeliverable`)."""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.notifier import NotificationFailed, NotificationSent
from notifier.models import deliveries
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)

DISPLAY_TIMEZONE = ZoneInfo("Europe/Paris")

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=False, default_for_string=False, enabled_extensions=()),
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, language: str, variables: dict[str, Any]) -> Rendered:
    compiled = templates.get_template(f"{template}.{language}.jinja")
    ctx = compiled.new_context(variables)
    html_ctx = compiled.new_context({k: _escape(v) for k, v in variables.items()})
    return Rendered(
        subject=" ".join("".join(compiled.blocks["subject"](ctx)).split()),
        text="".join(compiled.blocks["text"](ctx)).strip() + "\n",
        html="".join(compiled.blocks["html"](html_ctx)).strip() + "\n",
    )


def _escape(value: Any) -> Any:
    return escape(value) if isinstance(value, str) else value


def local_datetime(moment: datetime, language: str) -> str:
    return format_datetime(moment, "d MMMM y HH:mm zzz", tzinfo=DISPLAY_TIMEZONE, locale=language)


def local_date(moment: datetime, language: str) -> str:
    """The day `moment` falls on in Paris, e.g. "9 avril 2025" / "9 April 2025"."""
    return format_date(moment.astimezone(DISPLAY_TIMEZONE), "d MMMM y", locale=language)


def money(amount_cents: int, currency: str, language: str) -> str:
    """An amount as the reader writes it: "72,00 €" in French, "€72.00" in English."""
    return format_currency(Decimal(amount_cents).scaleb(-2), currency, locale=language)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Send it, or raise: `Undeliverable` when no later attempt can succeed, anything else to try again."""


class Undeliverable(Exception):
    """The recipient's mail server refused the address for good (an SMTP 5xx reply to RCPT TO), or the mail
    cannot be made for good (a document to attach no longer exists): the delivery fails at once, since trying
    again an hour later gets the same answer."""


ATTACHMENTS = "attachments"  # the variable holding a mail's attachment references; not given to the template


def attachment(document_id: uuid.UUID, account_id: uuid.UUID, filename: str) -> dict[str, str]:
    """The reference to one of billing's documents that a planned delivery keeps, to attach it when sent."""
    return {"document_id": str(document_id), "account_id": str(account_id), "filename": filename}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes


class Documents(Protocol):
    async def pdf(self, document_id: uuid.UUID) -> bytes:
        """The document's PDF, or raise: `Undeliverable` when it does not exist, anything else to try again."""


class NoDocuments:
    """Where no document source is wired: a mail with an attachment waits (tried again), never goes without it."""

    async def pdf(self, document_id: uuid.UUID) -> bytes:
        raise RuntimeError("no document source is configured to fetch the attachment")


async def plan(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    template: str,
    language: str,
    recipient: str,
    variables: dict[str, Any],
    account_id: uuid.UUID | None = None,
) -> None:
    """Record a mail to send; the same event asking twice plans it once."""
    await session.execute(
        insert(deliveries)
        .values(
            id=uuid.uuid4(),
            event_id=event_id,
            account_id=account_id,
            template=template,
            language=language,
            recipient=recipient,
            context=variables,
        )
        .on_conflict_do_nothing(constraint="deliveries_once_per_event")
    )
    log.info("planned a %s mail (%s) for event %s", template, language, event_id)


async def forget_account(session: AsyncSession, account_id: uuid.UUID, *, except_event: uuid.UUID) -> None:
    """Erase the addresses and variables of a closed account's mails, and cancel those not sent yet; the
    closure notices themselves (`except_event`) are still to be sent."""
    pending = deliveries.c.status == "pending"
    await session.execute(
        update(deliveries)
        .where(deliveries.c.account_id == account_id, deliveries.c.event_id != except_event)
        .values(
            recipient=func.concat("erased-", deliveries.c.id, "@erased.invalid"),
            context=None,
            status=case((pending, "failed"), else_=deliveries.c.status),
            last_error=case((pending, "account closed"), else_=deliveries.c.last_error),
        )
    )


def compose(
    sender: str, recipient: str, rendered: Rendered, language: str, attachments: Sequence[Attachment] = ()
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_msgid(domain="visiopass.localhost")
    message["Content-Language"] = language
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for each in attachments:
        message.add_attachment(each.content, maintype="application", subtype="pdf", filename=each.filename)
    return message


async def _attachments(references: list[dict[str, str]], documents: Documents) -> list[Attachment]:
    return [
        Attachment(filename=ref["filename"], content=await documents.pdf(uuid.UUID(ref["document_id"])))
        for ref in references
    ]


async def send_due(
    session: AsyncSession,
    outbox: Outbox,
    mailer: Mailer,
    *,
    sender: str,
    max_attempts: int,
    batch: int = 20,
    documents: Documents | None = None,
) -> int:
    """Send the deliveries that are due (rows locked, so replicas share the work); returns how many were tried.
    `documents` serves the files the mails attach."""
    documents = documents or NoDocuments()
    rows = (
        await session.execute(
            select(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= datetime.now(UTC))
            .order_by(deliveries.c.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        try:
            variables = dict(row.context)
            references = variables.pop(ATTACHMENTS, [])
            rendered = render(row.template, row.language, variables)
            files = await _attachments(references, documents)
            await mailer.send(compose(sender, row.recipient, rendered, row.language, files))
        except Exception as exc:
            await _record_failure(session, outbox, row, exc, max_attempts)
            continue
        now = datetime.now(UTC)
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == row.id)
            .values(status="sent", sent_at=now, attempts=row.attempts + 1, context=None, last_error=None)
        )
        await outbox.add(
            session,
            NotificationSent(
                delivery_id=row.id,
                template=row.template,
                recipient=row.recipient,
                caused_by=row.event_id,
                sent_at=now,
            ),
        )
    return len(rows)


async def _record_failure(session: AsyncSession, outbox: Outbox, row: Any, exc: Exception, max_attempts: int) -> None:
    attempts = row.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:1000]
    gave_up = attempts >= max_attempts or isinstance(exc, Undeliverable)
    log.warning("delivery %s attempt %d failed: %s", row.id, attempts, error)
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id)
        .values(
            attempts=attempts,
            last_error=error,
            status="failed" if gave_up else "pending",
            context=None if gave_up else row.context,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=min(2**attempts * 5, 3600)),
        )
    )
    if gave_up:
        await outbox.add(
            session,
            NotificationFailed(
                delivery_id=row.id,
                template=row.template,
                recipient=row.recipient,
                caused_by=row.event_id,
                error=error,
                failed_at=datetime.now(UTC),
            ),
        )
