"""Kafka subscribers of the notifier: each event a person must hear of becomes one planned delivery per mail.

The single-use tokens of the links travel sealed (contracts.secrets): `account_mails` opens them with the
notifier's keyring (NOTIFIER_EVENT_SECRET_KEYS) just before the mails are built, so the builders below read
plain tokens. A token that does not open (no key, wrong key, moved from another event) fails the handler, and
the record is dead-lettered as it came: sealed. Superseded v1 events (tokens in clear, no longer produced)
are still mailed while any is left to consume."""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.base import Event
from contracts.events import accounts as account_events
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
from contracts.secrets import Keyring, SecretError, secret_context, secret_fields, unseal
from notifier import service as notifier
from notifier.settings import NotifierSettings

E = TypeVar("E", bound=Event)


class Mail(NamedTuple):
    """What an event asks the notifier to send: the delivery to plan, short of its event id."""

    template: str
    language: str
    recipient: str
    variables: dict[str, Any]
    channel: Literal["email", "sms"] = "email"  # an SMS goes to an E.164 number with the template's sms block
    bulk: bool = False  # a fan-out, waiting behind transactional mail (service.plan)


def _account_registered(event: AccountRegistered, public_base_url: str) -> list[Mail]:
    return [
        Mail(
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
    ]


def _sign_up_attempted(event: SignUpAttemptedWithTakenEmail, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="sign_up_attempted",
            language=event.language,
            recipient=event.email,
            variables={
                "attempted_at": notifier.local_datetime(event.attempted_at, event.language),
                "link": f"{public_base_url}/forgot-password",
            },
        )
    ]


def _verification_link_requested(event: VerificationLinkRequested, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="verification_link",
            language=event.language,
            recipient=event.email,
            variables={
                "contact_name": event.contact_name,
                "link": f"{public_base_url}/verify-email?token={event.verification_token}",
                "expires_at": notifier.local_datetime(event.expires_at, event.language),
            },
        )
    ]


def _password_reset_requested(event: PasswordResetRequested, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="password_reset",
            language=event.language,
            recipient=event.email,
            variables={
                "link": f"{public_base_url}/reset-password?token={event.reset_token}",
                "expires_at": notifier.local_datetime(event.expires_at, event.language),
            },
        )
    ]


def _password_changed(event: PasswordChanged, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="password_changed",
            language=event.language,
            recipient=event.email,
            variables={
                "changed_at": notifier.local_datetime(event.changed_at, event.language),
                "link": f"{public_base_url}/forgot-password",
            },
        )
    ]


def _member_invited(event: MemberInvited, public_base_url: str) -> list[Mail]:
    return [
        Mail(
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
    ]


def _member_added(event: MemberAdded, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="member_added",
            language=event.language,
            recipient=event.email,
            variables={
                "name": event.name,
                "institution_name": event.institution_name,
                # the link that accepts joining; events from before joining needed acceptance have none
                "link": f"{public_base_url}/join?token={event.join_token}"
                if event.join_token
                else f"{public_base_url}/",
                "expires_at": notifier.local_datetime(event.expires_at, event.language) if event.expires_at else "",
            },
        )
    ]


def _email_change_requested(event: EmailChangeRequested, public_base_url: str) -> list[Mail]:
    return [
        Mail(
            template="email_change_confirmation",
            language=event.language,
            recipient=event.new_email,
            variables={
                "name": event.name,
                "link": f"{public_base_url}/confirm-email?token={event.confirmation_token}",
                "expires_at": notifier.local_datetime(event.expires_at, event.language),
            },
        )
    ]


def _email_changed(event: EmailChanged, public_base_url: str) -> list[Mail]:
    variables = {
        "new_email": event.new_email,
        "changed_at": notifier.local_datetime(event.changed_at, event.language),
        "link": f"{public_base_url}/forgot-password",  # events without a revert link
        "expires_at": "",
    }
    if event.revert_token and event.revert_expires_at:
        variables["link"] = f"{public_base_url}/revert-email?token={event.revert_token}"
        variables["expires_at"] = notifier.local_datetime(event.revert_expires_at, event.language)
    return [Mail(template="email_changed", language=event.language, recipient=event.old_email, variables=variables)]


def _account_closed(event: AccountClosed, public_base_url: str) -> list[Mail]:
    closed_at = notifier.local_datetime(event.closed_at, event.language)
    return [
        Mail(template="account_closed", language=event.language, recipient=email, variables={"closed_at": closed_at})
        for email in event.notice_emails
    ]


# The accounts events that become mails, each with the builder of its mails (one per recipient).
# AccountVerified and MemberRemoved need none.
ACCOUNT_MAILS: dict[type[Event], Callable[[Any, str], list[Mail]]] = {
    AccountRegistered: _account_registered,
    SignUpAttemptedWithTakenEmail: _sign_up_attempted,
    PasswordResetRequested: _password_reset_requested,
    PasswordChanged: _password_changed,
    VerificationLinkRequested: _verification_link_requested,
    MemberInvited: _member_invited,
    MemberAdded: _member_added,
    EmailChangeRequested: _email_change_requested,
    EmailChanged: _email_changed,
    AccountClosed: _account_closed,
}


# Superseded versions (tokens in clear) are built like their successors: same fields, same mails.
SUPERSEDED_ACCOUNT_MAILS: dict[type[Event], Callable[[Any, str], list[Mail]]] = {
    account_events.AccountRegisteredV1: _account_registered,
    account_events.VerificationLinkRequestedV1: _verification_link_requested,
    account_events.PasswordResetRequestedV1: _password_reset_requested,
    account_events.MemberInvitedV1: _member_invited,
    account_events.EmailChangeRequestedV1: _email_change_requested,
    account_events.EmailChangedV1: _email_changed,
}
ACCOUNT_MAILS |= SUPERSEDED_ACCOUNT_MAILS


def opened(event: E, keyring: Keyring | None) -> E:
    """A copy of `event` whose sealed fields hold their plain values, for building the mails in memory only:
    never log it, store it as an event or publish it."""
    fields = [name for name in secret_fields(type(event)) if getattr(event, name) is not None]
    if not fields:
        return event
    if keyring is None:
        raise SecretError("NOTIFIER_EVENT_SECRET_KEYS is not set: the notifier cannot open the tokens of its links")
    plain = {
        name: unseal(getattr(event, name), keyring, secret_context(type(event), name, event.aggregate_id()))
        for name in fields
    }
    return event.model_copy(update=plain)  # not validated again: the fields now hold plain tokens


def account_mails(event: Event, public_base_url: str, keyring: Keyring | None = None) -> list[Mail]:
    """The mails an accounts event asks for; none when it asks for none. `keyring` opens its sealed tokens."""
    build = ACCOUNT_MAILS.get(type(event))
    return build(opened(event, keyring), public_base_url) if build else []


def account_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    keyring = settings.keyring()

    async def on_account_event(session: AsyncSession, envelope: Envelope) -> None:
        for mail in account_mails(envelope.event, settings.public_base_url, keyring):
            await notifier.plan(
                session,
                event_id=envelope.id,
                template=mail.template,
                language=mail.language,
                recipient=mail.recipient,
                variables=mail.variables,
                account_id=envelope.event.account_id,
            )
        if isinstance(envelope.event, AccountClosed):
            await notifier.forget_account(session, envelope.event.account_id, except_event=envelope.id)

    return on_account_event
