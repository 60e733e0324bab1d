"""The mails of the billing events: what a manager is told of their orders, invoices and tokens, and the
organisers' alert for each new purchase order.

Each event names whom to tell in its `notice` (the person who placed the order, in their language); an event
without one plans no mail to the account, only the organisers' alert still goes. Invoices and credit notes are
attached by reference (service.attachment): the planned delivery never holds the PDF, which is fetched from
billing when the mail is sent. Amounts and dates are written the reader's way (service.money, local_date)."""

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.base import Event, VatAmounts
from contracts.events.billing import (
    CreditNoteIssued,
    InvoiceIssued,
    Notice,
    PurchaseOrderReceived,
    PurchaseOrderRefused,
    TokensExpiringSoon,
)
from notifier import service as notifier
from notifier import webhooks
from notifier.handlers import Mail
from notifier.settings import NotifierSettings

# The organisers' mails: about an account, not the account's own, so they outlive its closure (forget_account).
ORGANISER_MAILS = frozenset({"purchase_order_alert"})
ORGANISER_LANGUAGE = "fr"


def _mail(template: str, notice: Notice, variables: dict[str, Any]) -> Mail:
    return Mail(
        template=template,
        language=notice.language,
        recipient=notice.email,
        variables={"name": notice.name, **variables},
    )


def _gross(amounts: VatAmounts, language: str) -> str:
    return notifier.money(amounts.gross.amount_cents, amounts.gross.currency, language)


def _pdf(document_id: uuid.UUID, account_id: uuid.UUID, number: str) -> dict[str, Any]:
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", number) + ".pdf"
    return {notifier.ATTACHMENTS: [notifier.attachment(document_id, account_id, filename)]}


def _invoice_issued(event: InvoiceIssued, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    language = event.notice.language
    variables = {
        "number": event.number,
        "amount": _gross(event.amounts, language),
        "issued_at": notifier.local_date(event.issued_at, language),
        "link": f"{settings.public_base_url}/account/invoices",
        "tokens": str(event.tokens) if event.tokens else "",
        **_pdf(event.invoice_id, event.account_id, event.number),
    }
    if event.payment_method == "card":
        return [_mail("payment_received", event.notice, variables)]
    due_at = notifier.local_date(event.due_at, language) if event.due_at else ""
    return [_mail("purchase_order_validated", event.notice, variables | {"due_at": due_at})]


def _purchase_order_received(event: PurchaseOrderReceived, settings: NotifierSettings) -> list[Mail]:
    mails = [_purchase_order_alert(event, settings, recipient) for recipient in settings.back_office_emails]
    if event.notice is None:
        return mails
    language = event.notice.language
    variables = {
        "buyer_order_number": event.buyer_order_number,
        "reference": event.reference,
        "tokens": str(event.tokens),
        "amount": _gross(event.amounts, language),
        "link": f"{settings.public_base_url}/account/tokens",
    }
    return [_mail("purchase_order_received", event.notice, variables), *mails]


def _purchase_order_alert(event: PurchaseOrderReceived, settings: NotifierSettings, recipient: str) -> Mail:
    net = event.amounts.net
    return Mail(
        template="purchase_order_alert",
        language=ORGANISER_LANGUAGE,
        recipient=recipient,
        variables={
            "institution_name": event.institution_name,
            "reference": event.reference,
            "buyer_order_number": event.buyer_order_number,
            "tokens": str(event.tokens),
            "net_amount": notifier.money(net.amount_cents, net.currency, ORGANISER_LANGUAGE),
            "amount": _gross(event.amounts, ORGANISER_LANGUAGE),
            "received_at": notifier.local_datetime(event.received_at, ORGANISER_LANGUAGE),
            "link": f"{settings.public_base_url}/back-office/purchase-orders",
        },
    )


def _purchase_order_refused(event: PurchaseOrderRefused, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    variables = {
        "reference": event.reference,
        "reason": event.reason,
        "link": f"{settings.public_base_url}/account/tokens",
    }
    return [_mail("purchase_order_refused", event.notice, variables)]


def _tokens_expiring(event: TokensExpiringSoon, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    variables = {
        "tokens": str(event.tokens),
        "expires_at": notifier.local_datetime(event.expires_at, event.notice.language),
        "link": f"{settings.public_base_url}/planning",
    }
    return [_mail("tokens_expiring", event.notice, variables)]


def _credit_note_issued(event: CreditNoteIssued, settings: NotifierSettings) -> list[Mail]:
    if event.notice is None:
        return []
    language = event.notice.language
    variables = {
        "number": event.number,
        "invoice_number": event.invoice_number,
        "amount": _gross(event.amounts, language),
        "reason": event.reason,
        "link": f"{settings.public_base_url}/account/invoices",
        **_pdf(event.credit_note_id, event.account_id, event.number),
    }
    return [_mail("credit_note_issued", event.notice, variables)]


# The billing events that become mails, each with the builder of its mails. The other wallet events (credits,
# debits, refunds, expiries) are told on the portal, not by mail.
WALLET_MAILS: dict[type[Event], Callable[[Any, NotifierSettings], list[Mail]]] = {
    TokensExpiringSoon: _tokens_expiring,
    PurchaseOrderReceived: _purchase_order_received,
    PurchaseOrderRefused: _purchase_order_refused,
}
INVOICE_MAILS: dict[type[Event], Callable[[Any, NotifierSettings], list[Mail]]] = {
    InvoiceIssued: _invoice_issued,
    CreditNoteIssued: _credit_note_issued,
}
BILLING_MAILS = WALLET_MAILS | INVOICE_MAILS


def billing_mails(event: Event, settings: NotifierSettings) -> list[Mail]:
    """The mails a billing event asks for; none when it asks for none."""
    build = BILLING_MAILS.get(type(event))
    return build(event, settings) if build else []


def billing_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    """Plans the mails of a billing event, and its webhooks (notifier.webhooks: invoices, credited tokens)."""
    keyring = settings.keyring()

    async def on_billing_event(session: AsyncSession, envelope: Envelope) -> None:
        await webhooks.plan_event(session, envelope, settings.public_base_url, keyring)
        account_id = envelope.event.account_id
        for mail in billing_mails(envelope.event, settings):
            await notifier.plan(
                session,
                event_id=envelope.id,
                template=mail.template,
                language=mail.language,
                recipient=mail.recipient,
                variables=mail.variables,
                account_id=None if mail.template in ORGANISER_MAILS else account_id,
            )

    return on_billing_event
