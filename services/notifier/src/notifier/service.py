"""What the notifier does: plan one delivery per (event, template, recipient), render it, send it, log it.

A mail may attach documents (billing's invoices and credit notes, enrollment's attendance certificates). The
delivery's row holds a reference to each
(`attachment`), never the file: the file is fetched from its owner when the mail is sent, at every attempt. A
document its owner cannot serve now fails the attempt like an unreachable SMTP server (tried again later); one
its owner does not know fails the delivery at once (`Undeliverable`)."""

import email.utils
import logging
import mimetypes
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape
from sqlalchemy import case, delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import bouncing_addresses, deliveries, enrolments, notification_preferences, webhook_endpoints

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


def render_sms(template: str, language: str, variables: dict[str, Any]) -> str:
    """The message's `sms` block: its text as an SMS (notifier.sms fits it to the segments allowed)."""
    compiled = templates.get_template(f"{template}.{language}.jinja")
    if "sms" not in compiled.blocks:
        raise ValueError(f"the message {template} has no SMS text (no sms block in its template)")
    return " ".join("".join(compiled.blocks["sms"](compiled.new_context(variables))).split())


def _escape(value: Any) -> Any:
    return escape(value) if isinstance(value, str) else value


def local_datetime(moment: datetime, language: str, timezone: str | None = None) -> str:
    """`moment` as the reader writes it, in `timezone` (an IANA zone, e.g. a session's own; default Paris)."""
    zone = ZoneInfo(timezone) if timezone else DISPLAY_TIMEZONE
    return format_datetime(moment, "d MMMM y HH:mm zzz", tzinfo=zone, locale=language)


def local_date(moment: datetime, language: str) -> str:
    """The day `moment` falls on in Paris, e.g. "9 avril 2025" / "9 April 2025"."""
    return format_date(moment.astimezone(DISPLAY_TIMEZONE), "d MMMM y", locale=language)


def money(amount_cents: int, currency: str, language: str) -> str:
    """An amount as the reader writes it: "72,00 €" in French, "€72.00" in English."""
    return format_currency(Decimal(amount_cents).scaleb(-2), currency, locale=language)


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Send it, or raise: `Undeliverable` when no later attempt can succeed, `TransientDeliveryError` (or
        anything else) to try again later."""


class DeliveryError(Exception):
    """A mail could not go out. `reason` is written for the delivery log (never a secret); `code` is the mail
    server's SMTP reply code when it gave one."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Undeliverable(DeliveryError):
    """No later attempt can succeed, so the delivery fails at once: the mail server refused the sender, every
    recipient or the content for good (an SMTP 5xx reply to MAIL, RCPT or DATA), the address cannot be carried
    (malformed, or internationalised while the server lacks SMTPUTF8), or the mail cannot be made (a document to
    attach no longer exists)."""


class RecipientRefused(Undeliverable):
    """The mail server refused the recipient's mailbox for good (a 5xx to RCPT saying the mailbox is bad, not a
    policy refusal of our relay): a hard bounce, after which the address is marked bouncing (notifier.preferences)."""


class TransientDeliveryError(DeliveryError):
    """This attempt failed but a later one may succeed: an SMTP 4xx reply (greylisting, a full queue, 421), the
    mail server unreachable, refusing or dropping the connection, a timeout, or a TLS or login failure with our
    own relay. The delivery loop tries again with backoff, up to its limit. After a timeout or a dropped
    connection during DATA the mail may in fact have been delivered: the retry carries the same Message-ID."""


ATTACHMENTS = "attachments"  # the variable holding a mail's attachment references; not given to the template

# The reminders: mail a person may opt out of for their institution (notifier.preferences). Every other template is
# transactional (an account's links, receipts, invoices) and always goes. A reminder is planned as bulk and sent
# with its unsubscribe link, as `unsubscribe_url` and in List-Unsubscribe. Adding one is one line here.
REMINDERS = frozenset(
    {
        "tokens_expiring",
        "session_reminder_j7",
        "session_reminder_h1",
    }
)
UNSUBSCRIBE_URL = "unsubscribe_url"  # a reminder's variable, given when it is sent (notifier.delivery)
# The variable holding the calendar invitation a mail carries (notifier.invitations): what to build it from, not its
# bytes; not given to the template. The invitation is made and attached when the mail is sent (notifier.delivery).
INVITATION = "invitation"
HIDDEN = frozenset({ATTACHMENTS, INVITATION})  # the variables that are not the template's


BILLING, ENROLLMENT = "billing", "enrollment"  # the services whose documents mails attach (notifier.documents)


def attachment(document_id: uuid.UUID, account_id: uuid.UUID, filename: str, source: str = BILLING) -> dict[str, str]:
    """The reference to a document of `source` (billing's by default) that a planned delivery keeps, to attach it
    when sent."""
    reference = {"document_id": str(document_id), "account_id": str(account_id), "filename": filename}
    return reference if source == BILLING else reference | {"source": source}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes


class Documents(Protocol):
    async def pdf(self, document_id: uuid.UUID, source: str = BILLING) -> bytes:
        """The PDF of `source`'s document, or raise: `Undeliverable` when it does not exist, anything else to try
        again."""


class NoDocuments:
    """Where no document source is wired: a mail with an attachment waits (tried again), never goes without it."""

    async def pdf(self, document_id: uuid.UUID, source: str = BILLING) -> bytes:
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
    bulk: bool = False,
    channel: Literal["email", "sms"] = "email",
) -> None:
    """Record a mail to send; the same event asking twice plans it once. It is rendered once here: a template that
    needs a variable the event did not give raises (jinja2's UndefinedError), so the event goes to the dead letters
    with that reason instead of a mail going out wrong. `bulk`: a fan-out that waits behind transactional mail
    (notifier.delivery); a reminder always is. An SMS (`channel`) goes to an E.164 number (notifier.sms.normalise)
    with the template's `sms` block."""
    if channel == "sms":
        render_sms(template, language, variables)
    else:
        render(template, language, {name: value for name, value in variables.items() if name not in HIDDEN})
    await session.execute(
        insert(deliveries)
        .values(
            id=uuid.uuid4(),
            event_id=event_id,
            account_id=account_id,
            template=template,
            language=language,
            recipient=recipient,
            channel=channel,
            context=variables,
            priority=1 if bulk or template in REMINDERS else 0,
        )
        .on_conflict_do_nothing(constraint="deliveries_once_per_event")
    )
    log.info("planned a %s %s (%s) for event %s", template, channel, language, event_id)


async def forget_account(session: AsyncSession, account_id: uuid.UUID, *, except_event: uuid.UUID) -> None:
    """Erase the addresses and variables of a closed account's mails (and webhooks), and cancel those not sent yet;
    the closure notices themselves (`except_event`) are still to be sent. Its webhook endpoints, its preferences,
    its bouncing addresses and the copy of its enrolments (their contacts) are deleted."""
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
    await session.execute(delete(webhook_endpoints).where(webhook_endpoints.c.account_id == account_id))
    await session.execute(delete(bouncing_addresses).where(bouncing_addresses.c.account_id == account_id))
    await session.execute(delete(notification_preferences).where(notification_preferences.c.account_id == account_id))
    await session.execute(delete(enrolments).where(enrolments.c.account_id == account_id))  # their contacts


def compose(
    sender: str,
    recipient: str,
    rendered: Rendered,
    language: str,
    attachments: Sequence[Attachment] = (),
    *,
    delivery_id: uuid.UUID | str | None = None,
    unsubscribe_url: str | None = None,
    date: datetime | None = None,
) -> Message:
    """The mail as it goes out, but for its DKIM signature (the transport signs the exact bytes it sends).

    - `Message-ID` is `<delivery_id@domain of the sender>` when `delivery_id` is given: every attempt of one
      delivery carries the same id, so a mail delivered twice (an answer lost after DATA) is known as one copy.
    - `Date`: `date` (an aware datetime; default now), written in UTC.
    - `unsubscribe_url`, for non-transactional mail only (reminders, never an account or billing mail):
      `List-Unsubscribe` with it and RFC 8058's `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, so that the
      mailbox's own unsubscribe button POSTs to the URL. Mailbox providers honour an https URL only.
    - a text and an HTML alternative, quoted-printable unless plain ASCII: the body is 7-bit clean, so no relay
      re-encodes it (which would break the signature); then each attachment, of the MIME type its `content_type`
      attribute says when it has one (e.g. "text/calendar; method=REQUEST; charset=utf-8"), else the type its
      filename suggests (a PDF for "facture.pdf").

    Built with the email package's compat32 classes (email.mime), every header set as it is sent: a non-ASCII
    subject or display name RFC 2047-encoded here, an internationalised address as it is (the mail then goes out
    with SMTPUTF8, its headers in UTF-8). The modern API (EmailMessage) parses every header it is given, which made
    composing the notifier's bottleneck.
    """
    message = MIMEMultipart("alternative", _boundary(), [_text_part(rendered.text), _text_part(rendered.html, "html")])
    if attachments:
        files = [binary_part(each.content, _content_type(each), filename=each.filename) for each in attachments]
        message = MIMEMultipart("mixed", _boundary(), [message, *files])
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # email.mime gives every part one; it belongs to the top only
    message["From"] = _address(sender)
    message["To"] = _address(recipient)
    message["Subject"] = _encoded(rendered.subject, "Subject")
    message["Date"] = email.utils.format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    domain = _message_id_domain(sender)
    if delivery_id is None:
        message["Message-ID"] = make_msgid(domain=domain)
    else:
        message["Message-ID"] = f"<{_message_id_left(delivery_id)}@{domain}>"
    message["Content-Language"] = _one_line(language)
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{_unsubscribe_url(unsubscribe_url)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def binary_part(content: bytes, content_type: str, *, filename: str | None = None) -> Message:
    """A base64 MIME part holding `content`, of `content_type` (parameters included, e.g. "text/calendar;
    method=REQUEST"); an attachment named `filename` when one is given. Base64: the bytes arrive as they are made,
    and no relay rewrites a line of them."""
    part = Message()
    part["Content-Type"] = _one_line(content_type)
    part.set_payload(content)
    encode_base64(part)
    if filename is not None:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


# Quoted-printable UTF-8 for text that is not plain ASCII; as it is (7bit) otherwise
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_UTF8_7BIT = Charset("utf-8")
_UTF8_7BIT.body_encoding = None  # type: ignore[assignment]  # no transfer encoding: 7bit
_SEVEN_BIT_LINE = 78  # the longest line sent as it is: longer ones are quoted-printable (what EmailMessage did)


def _text_part(text: str, subtype: str = "plain") -> Message:
    """`text` as a text/`subtype` part in UTF-8: quoted-printable unless plain ASCII in short lines (7bit)."""
    plain = text.isascii() and all(len(line) <= _SEVEN_BIT_LINE for line in text.splitlines())
    charset = _UTF8_7BIT if plain else _UTF8_QP
    return MIMEText(text, subtype, charset)  # type: ignore[arg-type]  # a Charset is accepted (Python 3.5+)


def _boundary() -> str:
    """A multipart boundary: "=_" cannot occur in quoted-printable or base64, and 122 random bits make it unique in
    7bit text (the email package would otherwise search every part for a boundary at each serialisation)."""
    return f"=_{uuid.uuid4().hex}"


def _one_line(value: str) -> str:
    """`value`, refused when it holds a line break (which would end the header and could add another)."""
    if value.splitlines() not in ([], [value]):
        raise ValueError(f"a header value cannot break its line: {value!r}")
    return value


def _encoded(text: str, header_name: str) -> str:
    """`text` as it is sent in header `header_name`: as it is if plain ASCII, else RFC 2047 encoded words, one per
    line of at most 76 characters (so that each word keeps to RFC 2047's 75)."""
    if _one_line(text).isascii():
        return text
    return Header(text, "utf-8", maxlinelen=76, header_name=header_name).encode()


def _address(value: str) -> str:
    """An address header's value as it is sent: a non-ASCII display name RFC 2047-encoded; an internationalised
    (non-ASCII) address as it is, the mail then going out with SMTPUTF8 and its headers in UTF-8."""
    if _one_line(value).isascii():
        return value
    name, address = parseaddr(value)
    return formataddr((name, address)) if address.isascii() else value


_MESSAGE_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")


def _message_id_left(delivery_id: uuid.UUID | str) -> str:
    left = str(delivery_id)
    if not set(left) <= _MESSAGE_ID_CHARACTERS or "" in left.split("."):  # a dot-atom: no empty part between dots
        raise ValueError(f"{left!r} cannot be the left part of a Message-ID")
    return left


def _message_id_domain(sender: str) -> str:
    """The domain of the sender's address, as ASCII (a Message-ID is ASCII even in an internationalised mail)."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    try:
        return domain.encode("idna").decode("ascii") if domain else "localhost"
    except UnicodeError:
        return "localhost"


def _unsubscribe_url(url: str) -> str:
    if not url.startswith(("https://", "http://")) or any(c.isspace() or c in "<>" for c in url):
        raise ValueError(f"the unsubscribe URL must be an absolute http(s) URL: {url!r}")
    return url


def _content_type(attachment: Attachment) -> str:
    """The MIME type of an attachment: its `content_type` attribute when it has one, else its filename's."""
    return (
        getattr(attachment, "content_type", None)
        or mimetypes.guess_type(attachment.filename)[0]
        or "application/octet-stream"
    )


async def attachments_of(references: list[dict[str, str]], documents: Documents) -> list[Attachment]:
    """The files a delivery's references name, fetched from their owner now (at each attempt)."""
    return [
        Attachment(
            filename=ref["filename"],
            content=await documents.pdf(uuid.UUID(ref["document_id"]), ref.get("source", BILLING)),
        )
        for ref in references
    ]
