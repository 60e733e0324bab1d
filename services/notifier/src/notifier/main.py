"""Wires the notifier: consumers that plan deliveries, and the loop that sends them (notifier.delivery) through a
pool of SMTP connections."""

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
from notifier import delivery, enrolment_mails, preferences, webhooks
from notifier.api import CONTROLLERS
from notifier.billing_mails import INVOICE_MAILS, WALLET_MAILS, billing_handlers
from notifier.delivery import Policy
from notifier.documents import DocumentSources
from notifier.handlers import SUPERSEDED_ACCOUNT_MAILS, account_handlers
from notifier.mailer import SmtpPool
from notifier.settings import NotifierSettings
from notifier.sms import HttpSmsGateway
from servicekit.runtime import Service

log = logging.getLogger(__name__)

settings = NotifierSettings()
service = Service(settings, migrations_package="notifier", registry_name="notifier")
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
service.consume("billing.wallet", "wallet-mails", events=[*WALLET_MAILS, *webhooks.WALLET_WEBHOOKS])(
    billing_handlers(settings)
)
service.consume("billing.invoice", "invoice-mails", events=[*INVOICE_MAILS, *webhooks.INVOICE_WEBHOOKS])(
    billing_handlers(settings)
)
# the session copy, then the mails to its enrolments (rescheduled, J-7 and H-1 reminders): one handler, in order
service.consume("catalogue.session", "session-copy", events=enrolment_mails.SESSION_MAIL_EVENTS)(
    enrolment_mails.session_handlers(settings)
)
# one group for the enrolments' webhooks and mails (the group kept its name: its offsets stay where they were)
service.consume(
    "enrollment.enrollment",
    "enrollment-webhooks",
    events=list(dict.fromkeys([*webhooks.ENROLLMENT_WEBHOOKS, *enrolment_mails.ENROLMENT_EVENTS])),
)(enrolment_mails.enrollment_handlers(settings))
mailer = SmtpPool.from_settings(settings)
documents = DocumentSources.from_settings(settings)  # billing's invoices, enrollment's certificates
policy = Policy(
    sender=settings.mail_from,
    max_attempts=settings.delivery_max_attempts,
    concurrency=settings.delivery_concurrency,
    rate_per_second=settings.delivery_rate_per_second,
    lease_seconds=settings.delivery_lease_seconds,
    webhook_max_attempts=settings.webhook_max_attempts,
    webhook_backoff_base_seconds=settings.webhook_backoff_base_seconds,
    public_base_url=settings.public_base_url,
    unsubscribe=preferences.links(settings),
)


async def deliver_forever() -> None:
    sender = webhooks.WebhookSender.from_settings(settings, service.db)  # one HTTP client for the process
    sms_gateway = HttpSmsGateway.from_settings(settings)
    try:
        await delivery.run_forever(
            service.db,
            service.outbox,
            mailer,
            policy,
            poll_seconds=settings.delivery_poll_seconds,
            documents=documents,
            webhooks=sender,
            sms=sms_gateway,
        )
    finally:
        await mailer.close()
        await sender.aclose()
        await sms_gateway.aclose()


service.run_in_background(deliver_forever)
app = service.http_app(CONTROLLERS, title="Visiopass notifier (internal)")
