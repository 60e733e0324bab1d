"""The delivery loop: every planned delivery goes out, concurrently, shared by the notifier's replicas, and is
recorded once.

- **Claim.** A pass takes due deliveries (pending, `next_attempt_at` reached), transactional ones before bulk ones
  (`priority`), oldest first, with `FOR UPDATE SKIP LOCKED`, counts the attempt and leases them by moving
  `next_attempt_at` `lease_seconds` ahead, and commits at once: no lock is held while mail is sent, and a burst
  of bulk mail never holds up a password reset. Other replicas skip leased rows; the rows of a replica killed
  mid-send are taken again once their lease lapses.
- **Send.** Mail and SMS in one loop, webhooks in another (`run_forever`), so that a slow receiver never delays
  a mail. By the row's channel: a mail at most `concurrency` at a time (the SMTP pool's size) and
  `rate_per_second` (a token bucket; 0: no limit); an SMS (its template's `sms` block) through the SMS gateway,
  sharing the mail's gate; a webhook through notifier.webhooks, `webhook_concurrency` at a
  time. Rendering, attachments and the channel's answer decide the outcome. Not sent at all (one query a pass,
  notifier.preferences): a reminder to an institution that opted out -> `skipped`, no event; a mail to an address
  that bounces -> `failed` at once. A mailbox refused at RCPT TO (`RecipientRefused`) is marked bouncing.
- **Record.** Outcomes as a group commit (`Recorder`: those that arrive while one transaction is written go in the
  next), each only while the row is still this attempt's (status pending, same attempt count): sent -> `sent`,
  NotificationSent; a transient failure (`TransientDeliveryError`, or anything unexpected) -> tried again after an
  exponential backoff with full jitter, up to `max_attempts` (a webhook's own: `Policy.for_channel`); a permanent
  one (`Undeliverable`) or the last attempt -> `failed` at once, NotificationFailed (for a webhook, its endpoint is
  disabled instead: notifier.webhooks.disable). Nothing is dropped: every delivery ends sent or failed, and failures
  are in the delivery log.

The one window left: a mail the server accepted whose outcome was not recorded yet (the process killed in those
few milliseconds) is sent again when its lease lapses. It carries the same Message-ID (`compose(delivery_id=...)`),
by which mailboxes know it as the same mail."""

import asyncio
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Integer, Row, SmallInteger, Uuid, cast, column, func, select, update, values
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.notifier import NotificationFailed, NotificationSent
from notifier import invitations, preferences
from notifier.models import deliveries
from notifier.preferences import Skipped, UnsubscribeLinks
from notifier.service import (
    ATTACHMENTS,
    INVITATION,
    REMINDERS,
    UNSUBSCRIBE_URL,
    Documents,
    Mailer,
    NoDocuments,
    RecipientRefused,
    Undeliverable,
    attachments_of,
    compose,
    render,
    render_sms,
)
from notifier.sms import SmsSender
from notifier.webhooks import WebhookSender, disable
from servicekit.db import Database
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "visiopass_messages_total",
    "Delivery attempts by outcome (sent, retried, failed, skipped)",
    ["template", "channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "notifier_send_seconds",
    "Time to render and hand one message to its channel",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PENDING = Gauge("notifier_deliveries_pending", "Deliveries due and not yet sent (the queue's depth)", ["channel"])
OLDEST_PENDING = Gauge(
    "notifier_oldest_pending_delivery_age_seconds", "How long the oldest due delivery has waited", ["channel"]
)
# Each group has its own loop: a webhook receiver that takes its time answering never delays a mail's pass.
MESSAGE_CHANNELS, WEBHOOK_CHANNELS = ("email", "sms"), ("webhook",)


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
    # webhooks: a receiver down for a deploy is waited for longer than a mail server; they have their own gate,
    # so that slow receivers never hold the SMTP connections' turn, and no rate (the provider's quota is mail's)
    webhook_max_attempts: int = 12
    webhook_backoff_base_seconds: float = 60.0
    webhook_backoff_cap_seconds: float = 6 * 3600.0
    webhook_concurrency: int = 20
    public_base_url: str = ""  # the portal, linked from the mail telling that a webhook endpoint was disabled
    unsubscribe: UnsubscribeLinks | None = None  # the reminders' unsubscribe links (notifier.preferences)

    def for_channel(self, channel: str) -> "Policy":
        if channel == "webhook":
            return dataclasses.replace(
                self,
                max_attempts=self.webhook_max_attempts,
                backoff_base_seconds=self.webhook_backoff_base_seconds,
                backoff_cap_seconds=self.webhook_backoff_cap_seconds,
            )
        return self


Outcome = tuple[Row[Any], Exception | None, int | None]  # the row, its failure if any, a receiver's HTTP status


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


async def claim(
    db: Database, policy: Policy, now: datetime, channels: Sequence[str] = MESSAGE_CHANNELS + WEBHOOK_CHANNELS
) -> list[Row[Any]]:
    """Lease the due deliveries of one pass on `channels` (module docstring); their rows as they are after the
    claim."""
    async with db.transaction() as session:
        due = (
            select(deliveries.c.id)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= now,
                deliveries.c.channel.in_(channels),
            )
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
    webhooks: WebhookSender | None = None,
    sms: SmsSender | None = None,
) -> None:
    """Send the claimed rows, `policy.concurrency` mails and SMS and `policy.webhook_concurrency` webhooks at a
    time, and record their outcomes (a group commit)."""
    documents = documents or NoDocuments()
    bucket = bucket or TokenBucket(policy.rate_per_second)
    mail_gate = asyncio.Semaphore(policy.concurrency)
    webhook_gate = asyncio.Semaphore(policy.webhook_concurrency)
    recorder = Recorder(db, outbox, policy)
    held = await preferences.held_back(db, rows)

    async def one(row: Row[Any]) -> None:
        if row.id in held:  # opted out, or to an address that bounces: not sent, recorded all the same
            await recorder.add(row, held[row.id])
            return
        webhook = row.channel == "webhook"
        async with webhook_gate if webhook else mail_gate:
            if row.channel == "email":
                await bucket.acquire()
            started = time.monotonic()
            try:
                status = None
                if webhook:
                    status = await _send_webhook(webhooks, row)
                elif row.channel == "sms":
                    await _send_sms(sms, row)
                else:
                    await _send(mailer, row, policy, documents)
            except Exception as exc:  # every failure is recorded: retried, or failed for good
                await recorder.add(row, exc, getattr(exc, "code", None) if webhook else None)
            else:
                await recorder.add(row, None, status)
            finally:
                SEND_SECONDS.labels(row.channel).observe(time.monotonic() - started)

    try:
        await asyncio.gather(*(one(row) for row in rows))
    finally:
        await recorder.close()


async def _send(mailer: Mailer, row: Row[Any], policy: Policy, documents: Documents) -> None:
    variables = dict(row.context or {})
    references = variables.pop(ATTACHMENTS, [])
    invitation = variables.pop(INVITATION, None)
    unsubscribe_url = None
    if row.template in REMINDERS and row.account_id is not None and policy.unsubscribe is not None:
        unsubscribe_url = variables[UNSUBSCRIBE_URL] = policy.unsubscribe.url(row.account_id)
    rendered = render(row.template, row.language, variables)
    files = await attachments_of(references, documents)
    message = compose(
        policy.sender, row.recipient, rendered, row.language, files, delivery_id=row.id, unsubscribe_url=unsubscribe_url
    )
    if invitation is not None:
        method = invitation["method"]
        ics = invitation_of(invitation, organizer=policy.sender, attendee=row.recipient, dtstamp=row.created_at)
        invitations.attach_invitation(message, ics, method)
    await mailer.send(message)


def invitation_of(terms: dict[str, Any], *, organizer: str, attendee: str, dtstamp: datetime | None) -> bytes:
    """The calendar invitation a planned mail asks for (its INVITATION variable, notifier.enrolment_mails.invitation
    _terms), made now: from the mail's sender to its recipient. `dtstamp`: when the mail was planned, the same at
    every attempt."""
    name, address = parseaddr(organizer)
    return invitations.invitation(
        enrollment_id=uuid.UUID(terms["enrollment_id"]),
        session_id=uuid.UUID(terms["session_id"]),
        title=terms["title"],
        description=terms.get("description", ""),
        starts_at=datetime.fromisoformat(terms["starts_at"]),
        ends_at=datetime.fromisoformat(terms["ends_at"]),
        timezone=terms["timezone"],
        url=terms["url"],
        organizer_email=address,
        organizer_name=name or None,
        attendee_email=attendee,
        sequence=int(terms["sequence"]),
        method=terms["method"],
        dtstamp=dtstamp,
    )


async def _send_sms(sms: SmsSender | None, row: Row[Any]) -> None:
    if sms is None:
        raise RuntimeError("no SMS gateway is configured")
    await sms.send(row.recipient, render_sms(row.template, row.language, dict(row.context or {})), str(row.id))


async def _send_webhook(webhooks: WebhookSender | None, row: Row[Any]) -> int:
    if webhooks is None:
        raise RuntimeError("no webhook sender is configured")
    return await webhooks.send(row)


class Recorder:
    """Outcomes written as a group commit: the first outcome is recorded at once, and those that arrive while a
    transaction is being written go together in the next one — a transaction per mail at low rates, a few per
    hundred mails in a burst, where a commit per mail would cost more than the mail. A mail went out but is not yet
    recorded for at most about one transaction (module docstring: it would go again, with its Message-ID, if the
    process died then)."""

    def __init__(self, db: Database, outbox: Outbox, policy: Policy) -> None:
        self.db, self.outbox, self.policy = db, outbox, policy
        self._outcomes: list[Outcome] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, row: Row[Any], failure: Exception | None, response_status: int | None = None) -> None:
        self._outcomes.append((row, failure, response_status))
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


async def record(db: Database, outbox: Outbox, outcomes: Sequence[Outcome], policy: Policy) -> None:
    """Each outcome, in one transaction, where the row is still that attempt's (status pending, same attempt
    count): a late answer for an attempt whose lease lapsed and was taken again changes nothing."""
    now = datetime.now(UTC)
    sent = [(row, response_status) for row, failure, response_status in outcomes if failure is None]
    async with db.transaction() as session:
        events: list[Any] = []
        if sent:
            attempt = values(
                column("id", Uuid), column("attempts", Integer), column("response_status", Integer), name="attempt"
            ).data([(row.id, row.attempts, response_status) for row, response_status in sent])
            recorded = set(
                (
                    await session.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.id == attempt.c.id,
                            deliveries.c.attempts == attempt.c.attempts,
                            deliveries.c.status == "pending",
                        )
                        .values(
                            status="sent",
                            sent_at=now,
                            context=None,
                            last_error=None,
                            # a column of NULLs alone would be read as text
                            response_status=cast(attempt.c.response_status, SmallInteger),
                        )
                        .returning(deliveries.c.id)
                    )
                ).scalars()
            )
            for row, _ in sent:
                if row.id not in recorded:
                    log.warning("delivery %s was sent after its lease lapsed; another attempt owns it now", row.id)
                    continue
                DELIVERIES.labels(row.template, row.channel, "sent").inc()
                if row.channel != "email":  # the notifier.delivery events tell of mails (an address is their recipient)
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
        for row, failure, response_status in outcomes:
            if failure is None:
                continue
            if event := await _record_failure(session, row, failure, response_status, policy, now):
                events.append(event)
        await outbox.add_all(session, events)


async def _record_failure(
    session: AsyncSession, row: Row[Any], exc: Exception, response_status: int | None, policy: Policy, now: datetime
) -> NotificationFailed | None:
    """Retried or failed for good; a webhook failing for good disables its endpoint, in this same transaction
    (notifier.webhooks.disable: its manager is told)."""
    error = (getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")[:1000]
    policy = policy.for_channel(row.channel)
    skipped = isinstance(exc, Skipped)
    gave_up = skipped or isinstance(exc, Undeliverable) or row.attempts >= policy.max_attempts
    if skipped:
        log.info("delivery %s not sent: %s", row.id, error)
    else:
        log.warning("delivery %s attempt %d failed%s: %s", row.id, row.attempts, " for good" if gave_up else "", error)
    recorded = await session.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id, deliveries.c.status == "pending", deliveries.c.attempts == row.attempts)
        .values(
            last_error=error,
            status="skipped" if skipped else "failed" if gave_up else "pending",
            context=None if gave_up else row.context,
            next_attempt_at=now if gave_up else now + _wait(exc, row.attempts, policy),
            response_status=response_status,
        )
        .returning(deliveries.c.id)
    )
    if recorded.first() is None or not gave_up:
        DELIVERIES.labels(row.template, row.channel, "retried").inc()
        return None
    if skipped:
        DELIVERIES.labels(row.template, row.channel, "skipped").inc()
        return None
    DELIVERIES.labels(row.template, row.channel, "failed").inc()
    if isinstance(exc, RecipientRefused):
        await preferences.mark_bouncing(session, row.recipient, error, source="smtp", account_id=row.account_id)
    if row.channel == "webhook":
        reason = error if isinstance(exc, Undeliverable) else f"{row.attempts} attempts failed, the last: {error}"
        await disable(
            session, uuid.UUID(row.recipient), reason, public_base_url=policy.public_base_url, caused_by=row.id
        )
        return None
    if row.channel != "email":  # the notifier.delivery events tell of mails; the delivery log shows the others
        return None
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


async def measure(db: Database, now: datetime, channels: Sequence[str]) -> None:
    async with db.transaction() as session:
        measured = await session.execute(
            select(deliveries.c.channel, func.count(), func.min(deliveries.c.next_attempt_at))
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= now,
                deliveries.c.channel.in_(channels),
            )
            .group_by(deliveries.c.channel)
        )
        queues = {channel: (count, oldest) for channel, count, oldest in measured.tuples()}
    for channel in channels:
        count, oldest = queues.get(channel, (0, None))
        PENDING.labels(channel).set(count)
        OLDEST_PENDING.labels(channel).set((now - oldest).total_seconds() if oldest else 0)


async def run_forever(
    db: Database,
    outbox: Outbox,
    mailer: Mailer,
    policy: Policy,
    *,
    poll_seconds: float,
    documents: Documents | None = None,
    webhooks: WebhookSender | None = None,
    sms: SmsSender | None = None,
) -> None:
    """The delivery loops, one per group of channels (MESSAGE_CHANNELS, WEBHOOK_CHANNELS), side by side."""
    await asyncio.gather(
        _loop(db, outbox, mailer, policy, MESSAGE_CHANNELS, poll_seconds=poll_seconds, documents=documents, sms=sms),
        _loop(db, outbox, mailer, policy, WEBHOOK_CHANNELS, poll_seconds=poll_seconds, webhooks=webhooks),
    )


async def _loop(
    db: Database,
    outbox: Outbox,
    mailer: Mailer,
    policy: Policy,
    channels: Sequence[str],
    *,
    poll_seconds: float,
    documents: Documents | None = None,
    webhooks: WebhookSender | None = None,
    sms: SmsSender | None = None,
) -> None:
    """Pass after pass: claim, send, record; at once again while a pass was full, else after `poll_seconds`."""
    bucket = TokenBucket(policy.rate_per_second)
    while True:
        claimed: list[Row[Any]] = []
        try:
            await measure(db, datetime.now(UTC), channels)
            claimed = await claim(db, policy, datetime.now(UTC), channels)
            await deliver(
                db, outbox, mailer, claimed, policy, documents=documents, bucket=bucket, webhooks=webhooks, sms=sms
            )
        except Exception:
            log.exception("delivery pass failed; its leased deliveries are taken again when their lease lapses")
        if len(claimed) < policy.batch:
            await asyncio.sleep(poll_seconds)
