"""The delivery loop: every planned delivery goes out, concurrently, shared by the notifier's replicas, and is
recorded once.

- **Claim.** A pass takes due deliveries (pending, `next_attempt_at` reached), transactional ones before bulk ones
  (`priority`), oldest first, with `FOR UPDATE SKIP LOCKED`, counts the attempt and leases them by moving
  `next_attempt_at` `lease_seconds` ahead, and commits at once: no lock is held while mail is sent, and a burst
  of bulk mail never holds up a password reset. Other replicas skip leased rows; the rows of a replica killed
  mid-send are taken again once their lease lapses.
- **Send.** At most `concurrency` at a time (the SMTP pool's size) and `rate_per_second` (a token bucket; 0: no
  limit). Rendering, attachments and the channel's answer decide the outcome.
- **Record.** Each outcome in its own short transaction, and only while the row is still this attempt's (status
  pending, same attempt count): sent -> `sent`, NotificationSent; a transient failure (`TransientDeliveryError`,
  or anything unexpected) -> tried again after an exponential backoff with full jitter, up to `max_attempts`;
  a permanent one (`Undeliverable`) or the last attempt -> `failed` at once, NotificationFailed. Nothing is
  dropped: every delivery ends sent or failed, and failures are in the delivery log.

The one window left: a mail the server accepted whose outcome was not recorded (the process killed between the
two) is sent again when its lease lapses. It carries the same Message-ID (`compose(delivery_id=...)`), by which
mailboxes and the catcher know it as the same mail."""

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Row, func, select, update

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
    """Send the claimed rows, `policy.concurrency` at a time, and record each outcome."""
    documents = documents or NoDocuments()
    bucket = bucket or TokenBucket(policy.rate_per_second)
    gate = asyncio.Semaphore(policy.concurrency)

    async def one(row: Row[Any]) -> None:
        async with gate:
            await bucket.acquire()
            started = time.monotonic()
            try:
                await _send(mailer, row, policy, documents)
            except Exception as exc:  # every failure is recorded: retried, or failed for good
                await _record_failure(db, outbox, row, exc, policy)
            else:
                await _record_sent(db, outbox, row)
            finally:
                SEND_SECONDS.labels(CHANNEL).observe(time.monotonic() - started)

    await asyncio.gather(*(one(row) for row in rows))


async def _send(mailer: Mailer, row: Row[Any], policy: Policy, documents: Documents) -> None:
    variables = dict(row.context or {})
    references = variables.pop(ATTACHMENTS, [])
    rendered = render(row.template, row.language, variables)
    files = await attachments_of(references, documents)
    message = compose(policy.sender, row.recipient, rendered, row.language, files, delivery_id=row.id)
    await mailer.send(message)


def _wait(exc: Exception, attempts: int, policy: Policy) -> timedelta:
    """The backoff, but never shorter than the provider asked (an SMS gateway's Retry-After)."""
    asked = getattr(exc, "retry_after", None)
    wait = backoff(attempts, policy)
    return max(wait, timedelta(seconds=asked)) if isinstance(asked, int | float) else wait


def _this_attempt(row: Row[Any]) -> Any:
    return (deliveries.c.id == row.id) & (deliveries.c.status == "pending") & (deliveries.c.attempts == row.attempts)


async def _record_sent(db: Database, outbox: Outbox, row: Row[Any]) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        recorded = await session.execute(
            update(deliveries)
            .where(_this_attempt(row))
            .values(status="sent", sent_at=now, context=None, last_error=None)
            .returning(deliveries.c.id)
        )
        if recorded.first() is None:
            log.warning("delivery %s was sent after its lease lapsed; another attempt owns it now", row.id)
            return
        await outbox.add(
            session,
            NotificationSent(
                delivery_id=row.id, template=row.template, recipient=row.recipient, caused_by=row.event_id, sent_at=now
            ),
        )
    DELIVERIES.labels(row.template, CHANNEL, "sent").inc()


async def _record_failure(db: Database, outbox: Outbox, row: Row[Any], exc: Exception, policy: Policy) -> None:
    error = (getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")[:1000]
    gave_up = isinstance(exc, Undeliverable) or row.attempts >= policy.max_attempts
    now = datetime.now(UTC)
    log.warning("delivery %s attempt %d failed%s: %s", row.id, row.attempts, " for good" if gave_up else "", error)
    async with db.transaction() as session:
        recorded = await session.execute(
            update(deliveries)
            .where(_this_attempt(row))
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
            return
        await outbox.add(
            session,
            NotificationFailed(
                delivery_id=row.id,
                template=row.template,
                recipient=row.recipient,
                caused_by=row.event_id,
                error=error,
                failed_at=now,
            ),
        )
    DELIVERIES.labels(row.template, CHANNEL, "failed").inc()


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
