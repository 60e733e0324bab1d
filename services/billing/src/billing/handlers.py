"""Kafka subscribers of billing: thin — each reads its event and calls the wallet, in the consumer's transaction
(servicekit.consumer: the effects, the events they cause and the inbox row commit together, so a redelivered
event is skipped; the charge table would refuse a second debit anyway)."""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import wallet
from billing.models import wallets
from contracts import Envelope
from contracts.events.accounts import AccountClosed, AccountRegistered, AccountRegisteredV1, AccountVerified
from contracts.events.catalogue import SessionCancelled
from contracts.events.enrollment import EnrollmentCancelled, EnrollmentRequested
from servicekit import context
from servicekit.outbox import Outbox

ACCOUNT_EVENTS = (AccountRegistered, AccountRegisteredV1, AccountVerified, AccountClosed)
ENROLLMENT_EVENTS = (EnrollmentRequested, EnrollmentCancelled)
SESSION_EVENTS = (SessionCancelled,)


async def on_account_event(session: AsyncSession, envelope: Envelope) -> None:
    """What billing keeps of an account: its name for invoices, whether it is verified, whether it is closed."""
    event = envelope.event
    if isinstance(event, AccountRegistered | AccountRegisteredV1):
        await session.execute(
            pg_insert(wallets)
            .values(account_id=event.account_id, institution_name=event.institution_name)
            .on_conflict_do_update(
                index_elements=[wallets.c.account_id], set_={"institution_name": event.institution_name}
            )
        )
        return
    await wallet.ensure_wallet(session, event.account_id)
    if isinstance(event, AccountVerified):
        values = {"verified_at": event.verified_at}
        condition = wallets.c.verified_at.is_(None)
    elif isinstance(event, AccountClosed):
        values = {"closed_at": event.closed_at}
        condition = wallets.c.closed_at.is_(None)
    else:
        return
    await session.execute(update(wallets).where(wallets.c.account_id == event.account_id, condition).values(**values))


async def lock_wallets_of_enrolments(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Before a batch of enrolment events: their accounts' wallets, locked in one order (no deadlock between
    partitions applied concurrently or between replicas)."""
    await wallet.lock_wallets(session, (envelope.event.account_id for envelope in envelopes))  # type: ignore[attr-defined]


async def lock_wallets_of_sessions(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Before a batch of cancelled sessions: the wallets of every enrolment they will refund, in one order."""
    session_ids = [envelope.event.session_id for envelope in envelopes]  # type: ignore[attr-defined]
    await wallet.lock_wallets(session, await wallet.accounts_debited_for_sessions(session, session_ids))


def enrollment_handler(outbox: Outbox):  # type: ignore[no-untyped-def]
    async def on_enrollment_event(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.event
        now = datetime.now(UTC)
        if isinstance(event, EnrollmentRequested):
            events = await wallet.debit_for_enrollment(
                session,
                account_id=event.account_id,
                enrollment_id=event.enrollment_id,
                session_id=event.session_id,
                tokens=event.tokens,
                now=now,
            )
        elif isinstance(event, EnrollmentCancelled) and event.refund:
            events = await wallet.refund_enrollment(session, event.enrollment_id, now)
        else:
            return
        await outbox.add_all(session, events)

    return on_enrollment_event


def enrollment_batch_handler(outbox: Outbox):  # type: ignore[no-untyped-def]
    """A batch of enrolment events at once (the consumer's first attempt): each run of requests in a few
    statements (`wallet.debit_many`), anything else one by one as `enrollment_handler` does, in order."""
    one_by_one = enrollment_handler(outbox)

    async def debit(session: AsyncSession, requests: list[Envelope]) -> None:
        if not requests:
            return
        asked = [wallet.DebitRequest(e.account_id, e.enrollment_id, e.session_id, e.tokens) for e in _events(requests)]
        outcomes = await wallet.debit_many(session, asked, datetime.now(UTC))
        await outbox.add_caused(session, list(zip(requests, outcomes, strict=True)))

    async def on_enrollment_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        requests: list[Envelope] = []
        for envelope in envelopes:
            if isinstance(envelope.event, EnrollmentRequested):
                requests.append(envelope)
                continue
            await debit(session, requests)
            requests = []
            with context.handling(envelope):
                await one_by_one(session, envelope)
        await debit(session, requests)

    return on_enrollment_batch


def _events(envelopes: list[Envelope]) -> list[EnrollmentRequested]:
    return [envelope.event for envelope in envelopes if isinstance(envelope.event, EnrollmentRequested)]


def session_handler(outbox: Outbox):  # type: ignore[no-untyped-def]
    async def on_session_cancelled(session: AsyncSession, envelope: Envelope) -> None:
        """Every enrolment of a cancelled session gets its tokens back (enrollment also cancels them; whichever
        comes first refunds, the other finds the charge refunded)."""
        event = envelope.event
        if not isinstance(event, SessionCancelled):
            return
        now = datetime.now(UTC)
        for enrollment_id in await wallet.debited_enrollments_of_session(session, event.session_id):
            await outbox.add_all(session, await wallet.refund_enrollment(session, enrollment_id, now))

    return on_session_cancelled
