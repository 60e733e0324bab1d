"""Wires the notifier: consumers that plan deliveries, and the loop that sends them over SMTP."""

import asyncio
import logging

from contracts.events.accounts import (
    AccountClosed,
    AccountRegistered,
    EmailChanged,
    EmailChangeRequested,
    MemberAdded,
    MemberInvited,
    PasswordChanged,
    PasswordResetRequested,
    SignUpAttemptedWithTakenEmail,
    VerificationLinkRequested,
)
from notifier import service as notifier
from notifier.api import CONTROLLERS
from notifier.billing_mails import INVOICE_MAILS, WALLET_MAILS, billing_handlers
from notifier.documents import BillingDocuments
from notifier.handlers import SUPERSEDED_ACCOUNT_MAILS, account_handlers
from notifier.mailer import SmtpMailer
from notifier.settings import NotifierSettings
from servicekit.runtime import Service

log = logging.getLogger(__name__)

settings = NotifierSettings()
service = Service(settings, migrations_package="notifier")
service.consume(
    "accounts.account",
    "account-mails",
    events=[
        AccountRegistered,
        SignUpAttemptedWithTakenEmail,
        PasswordResetRequested,
        PasswordChanged,
        VerificationLinkRequested,
        MemberInvited,
        MemberAdded,
        EmailChangeRequested,
        EmailChanged,
        AccountClosed,
        *SUPERSEDED_ACCOUNT_MAILS,
    ],  # keep in step with ACCOUNT_MAILS
)(account_handlers(settings))
service.consume("billing.wallet", "wallet-mails", events=list(WALLET_MAILS))(billing_handlers(settings))
service.consume("billing.invoice", "invoice-mails", events=list(INVOICE_MAILS))(billing_handlers(settings))
mailer = SmtpMailer(settings)
documents = BillingDocuments.from_settings(settings)


async def deliver_forever() -> None:
    while True:
        try:
            async with service.db.transaction() as session:
                tried = await notifier.send_due(
                    session,
                    service.outbox,
                    mailer,
                    sender=settings.mail_from,
                    max_attempts=settings.delivery_max_attempts,
                    documents=documents,
                )
        except Exception:
            log.exception("delivery loop failed")
            tried = 0
        if not tried:
            await asyncio.sleep(settings.delivery_poll_seconds)


service.run_in_background(deliver_forever)
app = service.http_app(CONTROLLERS, title="Visiopass notifier (internal)")
