"""Kafka subscribers of the notifier: each event a person must hear of becomes a planned delivery."""

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.events.accounts import AccountRegistered
from notifier import service as notifier
from notifier.settings import NotifierSettings


def account_handlers(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    async def on_account_event(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, AccountRegistered):
            await notifier.plan(
                session,
                event_id=envelope.id,
                template="account_registered",
                language=event.language,
                recipient=event.email,
                variables={
                    "contact_name": event.contact_name,
                    "institution_name": event.institution_name,
                    "link": f"{settings.public_base_url}/verify-email?token={event.verification_token}",
                    "expires_at": notifier.local_datetime(event.verification_expires_at, event.language),
                },
            )

    return on_account_event
