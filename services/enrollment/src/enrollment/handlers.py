"""Kafka subscribers of enrollment: thin — each reads its event and calls the rules (enrollment.service), in the
consumer's transaction (servicekit.consumer: the effects, the events they cause and the inbox row commit together,
so a redelivered event is skipped; a pending-only update would change nothing anyway)."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from contracts.events.billing import TokenDebitRejected, TokensDebited
from contracts.events.catalogue import (
    SessionCancelled,
    SessionEnded,
    SessionRescheduled,
    SessionScheduled,
    SessionStarting,
    SessionUpdated,
)
from enrollment import service
from enrollment.service import Rules
from servicekit.outbox import Outbox

WALLET_EVENTS = (TokensDebited, TokenDebitRejected)
SESSION_EVENTS = (
    SessionScheduled,
    SessionUpdated,
    SessionRescheduled,
    SessionCancelled,
    SessionStarting,
    SessionEnded,
)


async def lock_sessions_of_answers(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Before a batch of billing's answers: the sessions whose places a rejection frees, locked in one order (two
    partitions applied at once never deadlock)."""
    await service.lock_sessions(
        session, [e.event.session_id for e in envelopes if isinstance(e.event, TokenDebitRejected)]
    )


def wallet_handler(outbox: Outbox, rules: Rules):  # type: ignore[no-untyped-def]
    async def on_wallet_event(session: AsyncSession, envelope: Envelope) -> None:
        event, now = envelope.event, datetime.now(UTC)
        events: list[Event] = []
        if isinstance(event, TokensDebited):
            events = await service.tokens_debited(session, event.enrollment_id, now)
        elif isinstance(event, TokenDebitRejected):
            events = await service.debit_rejected(
                session, event.enrollment_id, event.session_id, event.reason, rules, now
            )
        await outbox.add_all(session, events)

    return on_wallet_event


def session_handler(outbox: Outbox, rules: Rules):  # type: ignore[no-untyped-def]
    async def on_session_event(session: AsyncSession, envelope: Envelope) -> None:
        event, now = envelope.event, datetime.now(UTC)
        events: list[Event] = []
        if isinstance(event, SessionScheduled | SessionUpdated):
            events = await service.session_terms(session, event, rules, now)
        elif isinstance(event, SessionRescheduled):
            ends_at = event.starts_at + timedelta(minutes=event.duration_minutes)
            await service.session_moved(session, event.session_id, event.starts_at, ends_at, now)
        elif isinstance(event, SessionStarting):
            await service.session_moved(session, event.session_id, event.starts_at, event.ends_at, now)
            if event.offset == "open":
                await service.session_status(session, event.session_id, "started", after="published", now=now)
        elif isinstance(event, SessionEnded):
            for after in ("published", "started"):
                await service.session_status(session, event.session_id, "ended", after=after, now=now)
        elif isinstance(event, SessionCancelled):
            events = await service.session_cancelled(session, event.session_id, now)
        await outbox.add_all(session, events)

    return on_session_event
