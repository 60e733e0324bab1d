"""Kafka subscribers of the notifier: each event a person must hear of becomes a planned delivery."""

from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.base import Event
from contracts.events.accounts import (
    AccountRegistered,
    MemberInvited,
    PasswordChanged,
    PasswordResetRequested,
    VerificationLinkRequested,
)
from notifier import service as notifier
from notifier.settings import NotifierSettings


class Mail(NamedTuple):
    """What an event asks the notifier to send: the delivery to plan, short of its event id."""

    template: str
    language: str
    recipient: str
    variables: dict[str, Any]


def _account_registered(event: AccountRegistered, public_base_url: str) -> Mail:
    return Mail(
        template="account_registered",
        language=event.language,
        recipient=event.email,
        variables={
            "contact_name": event.contact_name,
            "institution_name": event.institution_name,
            "link": f"{public_base_url}/verify-email?token={event.verification_token}",
            "expires_at": notifier.local_datetime(event.verification_expires_at, event.language),
        },
    )


def _verification_link_requested(event: VerificationLinkRequested, public_base_url: str) -> Mail:
    return Mail(
        template="verification_link",
        language=event.language,
        recipient=event.email,
        variables={
            "contact_name": event.contact_name,
            "link": f"{public_base_url}/verify-email?token={event.verification_token}",
            "expires_at": notifier.local_datetime(event.expires_at, event.language),
        },
    )


def _password_reset_requested(event: PasswordResetRequested, public_base_url: str) -> Mail:
    return Mail(
        template="password_reset",
        language=event.language,
        recipient=event.email,
        variables={
            "link": f"{public_base_url}/reset-password?token={event.reset_token}",
            "expires_at": notifier.local_datetime(event.expires_at, event.language),
        },
    )


def _password_changed(event: PasswordChanged, public_base_url: str) -> Mail:
    return Mail(
        template="password_changed",
        language=event.language,
        recipient=event.email,
        variables={
            "changed_at": notifier.local_datetime(event.changed_at, event.language),
            "link": f"{public_base_url}/forgot-password",
        },
    )


def _member_invited(event: MemberInvited, public_base_url: str) -> Mail:
    return Mail(
        template="member_invitation",
        language=event.language,
        recipient=event.email,
        variables={
            "name": event.name,
            "institution_name": event.institution_name,
            "link": f"{public_base_url}/accept-invitation?token={event.invitation_token}",
            "expires_at": notifier.local_datetime(event.expires_at, event.language),
        },
    )


# The accounts events that become a mail. AccountVerified and AccountClosed need none.
ACCOUNT_MAILS: dict[type[Event], Callable[[Any, str], Mail]] = {
    AccountRegistered: _account_registered,
    PasswordResetRequested: _password_reset_requested,
    PasswordChanged: _password_changed,
    VerificationLinkRequested: _verification_link_requested,
    MemberInvited: _member_invited,
}


def account_mail(event: Event, public_base_url: str) -> Mail | None:
    """The mail an accounts event asks for, or None when it asks for none."""
    build = ACCOUNT_MAILS.get(type(event))
    return build(event, public_base_url) if build else None


def account_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    async def on_account_event(session: AsyncSession, envelope: Envelope) -> None:
        mail = account_mail(envelope.event, settings.public_base_url)
        if mail is None:
            return
        await notifier.plan(
            session,
            event_id=envelope.id,
            template=mail.template,
            language=mail.language,
            recipient=mail.recipient,
            variables=mail.variables,
        )

    return on_account_event
