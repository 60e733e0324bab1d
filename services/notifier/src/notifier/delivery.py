"""The delivery loop: every planned delivery goes out, concurrently, shared by the notifier's replicas, and is
recorded once.

- **Claim.** A pass takes due deliveries (pending, `next_attempt_at` reached), transactional ones before bulk ones
  (`priority`), oldest first, with `FOR UPDATE SKIP LOCKED`, counts the attempt and leases them by moving
  `next_attempt_at` `lease_seconds` ahead, and commits at once: no lock is held while mail is sent, and a burst
  of bulk mail never holds up a password reset. Other replicas skip leased rows; the rows of a replica killed
  mid-send are taken again once their lease lapses.
- **Send.** At most `concurrency` at a time (the SMTP pool's size) and `rate_per_second` (a token bucket; 0: no
  limit). Rendering, attachments and the channel's answer decide the outcome.
- **Record.** Outcomes as a group commit (`Recorder`: those that arrive while one transaction is written go in the
  next), each only while the row is still this attempt's (status pending, same attempt count): sent -> `sent`,
  NotificationSent; a transient failure (`TransientDeliveryError`, or anything unexpected) -> tried again after an
  exponential backoff with full jitter, up to `max_attempts`; a permanent one (`Undeliverable`) or the last attempt
  -> `failed` at once, NotificationFailed. Nothing is dropped: every delivery ends sent or failed, and failures
  are in the delivery log.

The one window left: a mail the server accepted whose outcome was not recorded yet (the process killed in those
few milliseconds) is sent again when its lease lapses. It carries the same Message-ID (`compose(delivery_id=...)`),
by which mailboxes know it as the same mail."""

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Integer, Row, Uuid, column, func, select, update, values
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.notifier import NotificationFailed, NotificationSent
from notifier.models import deliveries
from notifier.service import (
    ATTACHMENTS,
    Documents,
    Mailer,
    NoDocuments,
    Undeliverable,
    attachments_of,
    compose,
    render,
)
from servicekit.db import Database
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)

CHANNEL = "email"
DELIVERIES = Counter(
    "notifier_deliveries_total",
    "Delivery attempts by outcome (sent, retried, failed)",
    ["template", "channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "notifier_send_seconds",
    "Time to render and hand one message to its channel",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PENDING = Gauge("notifier_deliveries_pending", "Deliveries due and not yet sent (the queue's depth)")
OLDEST_PENDING = Gauge("notifier_oldest_pending_delivery_age_seconds", "How long the oldest due delivery has waited")


@dataclass(frozen=True)
class Policy:
    sender: str
    max_attempts: int = 6
    concurrency: int = 10
    batch: int = 200
    lease_seconds: float = 120.0
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 3600.0
    rate_per_second: float = 0.0


class TokenBucket:
    """At most `rate` acquisitions a second on average, in bursts of at most `rate` (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.rate, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def backoff(attempts: int, policy: Policy, rng: random.Random = random.SystemRandom()) -> timedelta:
    """Full jitter (AWS's "exponential backoff and jitter"): a uniform wait up to base * 2^(attempts - 1), capped."""
    ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=rng.uniform(policy.backoff_base_seconds / 2, max(ceiling, policy.backoff_base_seconds)))


async def claim(db: Database, policy: Policy, now: datetime) -> list[Row[Any]]:
    """Lease the due deliveries of one pass (module docstring); their rows as they are after the claim."""
    async with db.transaction() as session:
        due = (
            select(deliveries.c.id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.priority, deliveries.c.next_attempt_at)
            .limit(policy.batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(due))
            .values(
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=now + timedelta(seconds=policy.lease_seconds),
            )
            .returning(*deliveries.c)
        )
        return sorted(claimed.all(), key=lambda row: (row.priority, row.created_at))


async def deliver(
    db: Database,
    outbox: Outbox,
    mailer: Mailer,
    rows: Sequence[Row[Any]],
    policy: Policy,
    *,
    documents: Documents | None = None,
    bucket: TokenBucket | None = None,
) -> None:
    """Send the claimed rows, `policy.concurrency` at a time, and record their outcomes (a group commit)."""
    documents = documents or NoDocuments()
    bucket = bucket or TokenBucket(policy.rate_per_second)
    gate = asyncio.Semaphore(policy.concurrency)
    recorder = Recorder(db, outbox, policy)

    async def one(row: Row[Any]) -> None:
        async with gate:
            await bucket.acquire()
            started = time.monotonic()
            try:
                await _send(mailer, row, policy, documents)
            except Exception as exc:  # every failure is recorded: retried, or failed for good
                await recorder.add(row, exc)
            else:
                await recorder.add(row, None)
            finally:
                SEND_SECONDS.labels(CHANNEL).observe(time.monotonic() - started)

    try:
        await asyncio.gather(*(one(row) for row in rows))
    finally:
        await recorder.close()


async def _send(mailer: Mailer, row: Row[Any], policy: Policy, documents: Documents) -> None:
    variables = dict(row.context or {})
    references = variables.pop(ATTACHMENTS, [])
    rendered = render(row.template, row.language, variables)
    files = await attachments_of(references, documents)
    message = compose(policy.sender, row.recipient, rendered, row.language, files, delivery_id=row.id)
    await mailer.send(message)


class Recorder:
    """Outcomes written as a group commit: the first outcome is recorded at once, and those that arrive while a
    transaction is being written go together in the next one — a transaction per mail at low rates, a few per
    hundred mails in a burst, where a commit per mail would cost more than the mail. A mail went out but is not yet
    recorded for at most about one transaction (module docstring: it would go again, with its Message-ID, if the
    process died then)."""

    def __init__(self, db: Database, outbox: Outbox, policy: Policy) -> None:
        self.db, self.outbox, self.policy = db, outbox, policy
        self._outcomes: list[tuple[Row[Any], Exception | None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, row: Row[Any], failure: Exception | None) -> None:
        self._outcomes.append((row, failure))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            try:
                await record(self.db, self.outbox, outcomes, self.policy)
            except Exception:
                log.exception("%d delivery outcomes not recorded; their leases lapse and they go again", len(outcomes))

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer


async def record(
    db: Database, outbox: Outbox, outcomes: Sequence[tuple[Row[Any], Exception | None]], policy: Policy
) -> None:
    """Each outcome, in one transaction, where the row is still that attempt's (status pending, same attempt
    count): a late answer for an attempt whose lease lapsed and was taken again changes nothing."""
    now = datetime.now(UTC)
    sent = [row for row, failure in outcomes if failure is None]
    async with db.transaction() as session:
        events: list[Any] = []
        if sent:
            attempt = values(column("id", Uuid), column("attempts", Integer), name="attempt").data(
                [(row.id, row.attempts) for row in sent]
            )
            recorded = set(
                (
                    await session.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.id == attempt.c.id,
                            deliveries.c.attempts == attempt.c.attempts,
                            deliveries.c.status == "pending",
                        )
                        .values(status="sent", sent_at=now, context=None, last_error=None)
                        .returning(deliveries.c.id)
                    )
                ).scalars()
            )
            for row in sent:
                if row.id not in recorded:
                    log.warning("delivery %s was sent after its lease lapsed; another attempt owns it now", row.id)
                    continue
                events.append(
                    NotificationSent(
                        delivery_id=row.id,
                        template=row.template,
                        recipient=row.recipient,
                        caused_by=row.event_id,
                        sent_at=now,
                    )
                )
                DELIVERIES.labels(row.template, CHANNEL, "sent").inc()
        for row, failure in outcomes:
            if failure is not None and (event := await _record_failure(session, row, failure, policy, now)):
                events.append(event)
        await outbox.add_all(session, events)


async def _record_failure(
    session: AsyncSession, row: Row[Any], exc: Exception, policy: Policy, now: datetime
) -> NotificationFailed | None:
    error = (getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")[:1000]
    gave_up = isinstance(exc, Undeliverable) or row.attempts >= policy.max_attempts
    log.warning("delivery %s attempt %d failed%s: %s", row.id, row.attempts, " for good" if gave_up else "", error)
    recorded = await session.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id, deliveries.c.status == "pending", deliveries.c.attempts == row.attempts)
        .values(
            last_error=error,
            status="failed" if gave_up else "pending",
            context=None if gave_up else row.context,
            next_attempt_at=now if gave_up else now + _wait(exc, row.attempts, policy),
        )
        .returning(deliveries.c.id)
    )
    if recorded.first() is None or not gave_up:
        DELIVERIES.labels(row.template, CHANNEL, "retried").inc()
        return None
    DELIVERIES.labels(row.template, CHANNEL, "failed").inc()
    return NotificationFailed(
        delivery_id=row.id,
        template=row.template,
        recipient=row.recipient,
        caused_by=row.event_id,
        error=error,
        failed_at=now,
    )


def _wait(exc: Exception, attempts: int, policy: Policy) -> timedelta:
    """The backoff, but never shorter than the provider asked (an SMS gateway's Retry-After)."""
    asked = getattr(exc, "retry_after", None)
    wait = backoff(attempts, policy)
    return max(wait, timedelta(seconds=asked)) if isinstance(asked, int | float) else wait


async def measure(db: Database, now: datetime) -> None:
    async with db.transaction() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now
                )
            )
        ).one()
    PENDING.set(count)
    OLDEST_PENDING.set((now - oldest).total_seconds() if oldest else 0)


async def run_forever(
    db: Database,
    outbox: Outbox,
    mailer: Mailer,
    policy: Policy,
    *,
    poll_seconds: float,
    documents: Documents | None = None,
) -> None:
    """Pass after pass: claim, send, record; at once again while a pass was full, else after `poll_seconds`."""
    bucket = TokenBucket(policy.rate_per_second)
    while True:
        claimed: list[Row[Any]] = []
        try:
            await measure(db, datetime.now(UTC))
            claimed = await claim(db, policy, datetime.now(UTC))
            await deliver(db, outbox, mailer, claimed, policy, documents=documents, bucket=bucket)
        except Exception:
            log.exception("delivery pass failed; its leased deliveries are taken again when their lease lapses")
        if len(claimed) < policy.batch:
            await asyncio.sleep(poll_seconds)
