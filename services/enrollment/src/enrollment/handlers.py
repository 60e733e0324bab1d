"""Kafka subscribers of enrollment: thin — each reads its event and calls the rules (enrollment.service), in the
consumer's transaction (servicekit.consumer: the effects, the events they cause and the inbox row commit together,
so a redelivered event is skipped; a pending-only update would change nothing anyway)."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event
from contracts.events.billing import TokenDebitRejected, TokenPurchased, TokensDebited
from contracts.events.catalogue import (
    SessionCancelled,
    SessionEnded,
    SessionRescheduled,
    SessionScheduled,
    SessionStarting,
    SessionUpdated,
)
from enrollment import certificates, links, service
from enrollment.service import Rules
from servicekit import context
from servicekit.outbox import Outbox

WALLET_EVENTS = (TokensDebited, TokenDebitRejected, TokenPurchased)
SESSION_EVENTS = (
    SessionScheduled,
    SessionUpdated,
    SessionRescheduled,
    SessionCancelled,
    SessionStarting,
    SessionEnded,
)


async def lock_sessions_of_answers(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Before a batch of billing's answers: the sessions whose places a rejection frees, and those a purchase order
    names, locked in one order (two partitions applied at once never deadlock)."""
    ids = [e.event.session_id for e in envelopes if isinstance(e.event, TokenDebitRejected)]
    ids += [i for e in envelopes if isinstance(e.event, TokenPurchased) for i in e.event.enrol_session_ids]
    await service.lock_sessions(session, ids)


def wallet_handler(outbox: Outbox, rules: Rules):  # type: ignore[no-untyped-def]
    async def on_wallet_event(session: AsyncSession, envelope: Envelope) -> None:
        event, now = envelope.event, datetime.now(UTC)
        events: list[Event] = []
        if isinstance(event, TokensDebited):
            events = await service.tokens_debited(session, [event.enrollment_id], now)
        elif isinstance(event, TokenDebitRejected):
            events = await service.debit_rejected(
                session, event.enrollment_id, event.session_id, event.reason, rules, now
            )
        elif isinstance(event, TokenPurchased) and event.enrol_session_ids:
            events = await service.enrol_for_order(session, event, rules, now, outbox)
        await outbox.add_all(session, events)

    return on_wallet_event


def wallet_batch_handler(outbox: Outbox, rules: Rules):  # type: ignore[no-untyped-def]
    """A batch of billing's answers at once (the consumer's first attempt): its debits confirmed in a few
    statements (a statement per event would let a busy HTTP side starve the consumer between awaits), anything
    else one by one as `wallet_handler` does. A debit and a rejection never name the same enrolment, and an
    order's enrolments are debited in later batches: the order within the batch does not matter."""
    one_by_one = wallet_handler(outbox, rules)

    async def on_wallet_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        debited = [e.event.enrollment_id for e in envelopes if isinstance(e.event, TokensDebited)]
        await outbox.add_all(session, await service.tokens_debited(session, debited, datetime.now(UTC)))
        for envelope in envelopes:
            if not isinstance(envelope.event, TokensDebited):
                with context.handling(envelope):
                    await one_by_one(session, envelope)

    return on_wallet_batch


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
            elif event.offset == "J-2":  # the links go out (each once: mailed_at)
                events = await links.mail_links(session, event.session_id, links.link_rules(), now)
        elif isinstance(event, SessionEnded):
            for after in ("published", "started"):
                await service.session_status(session, event.session_id, "ended", after=after, now=now)
            await links.close_attendances(session, event.session_id)  # the open ones end at the session's end
            # after the attendances were closed: a certificate per person who came (none anew when redelivered)
            events = await certificates.issue_for_session(session, event.session_id, now)
        elif isinstance(event, SessionCancelled):
            events = await service.session_cancelled(session, event.session_id, now)
        await outbox.add_all(session, events)

    return on_session_event
