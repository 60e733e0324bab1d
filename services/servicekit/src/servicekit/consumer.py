"""Kafka consumers on FastStream, in batches: decode the contracts, apply each event once, commit after.

Records come in batches (up to `batch_size`, from one or several partitions). The records of one partition
are applied in one database transaction: their inbox ids are claimed in one statement, then each new event
runs its handler. A handler still sees one event and one session. Partitions of a batch are applied
concurrently, each in offset order.

A batch is first applied without savepoints (they cost more than most handlers). If a handler fails, that
transaction is rolled back and the batch applied again with a savepoint per event: the failing event is
rolled back, retried in place with backoff up to `max_attempts`, then dead-lettered alone, while the others
commit once.

- A record that does not decode goes to `<topic>.dlq` (reason `malformed`); a handler that keeps failing
  sends its record there too (reason `handler_failed`), and its inbox claim is rolled back so that a replay
  of the dead letter takes effect.
- An infrastructure error (database or network down) is not the events' fault, nor is a conflict between
  concurrent transactions (a deadlock, a serialization failure): the partition's transaction is lost, the
  consumer seeks back to its first record and fetches it again after a growing pause. Never dead-lettered.
- A consumer may also have a batch handler that applies all the new events of a transaction at once (e.g. in a
  few set-based statements): it must do what the handler would do for each in turn. It serves the first attempt
  only: when the batch fails, the careful attempt and the events alone go through the handler, one by one.
- A consumer may `prepare` each transaction before its handlers run, e.g. lock the rows its events will change
  in one fixed order, so that two partitions applied concurrently (or two replicas) never deadlock.
- A transaction that fails as a whole for another reason (e.g. at commit) is applied again one event per
  transaction, so that only the culprit is dead-lettered.
- Offsets are committed only up to records whose effects (or dead letters) are committed, every
  1,000 records or every second: a crash re-delivers what was not committed, and the inbox
  absorbs it.
"""

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import ContractError, Envelope, Event, decode
from servicekit import context, inbox
from servicekit.db import Database
from servicekit.kafka import KafkaAccess, kafka_access
from servicekit.logs import safe_error_text

log = logging.getLogger(__name__)

OUTCOMES = ("processed", "duplicate", "ignored", "retried", "dead_lettered")
EVENTS_CONSUMED = Counter(
    "consumer_events_total",
    "Events handled by consumers, by outcome (" + ", ".join(OUTCOMES) + ")",
    ["service", "consumer", "topic", "outcome"],
)

CONSUMER_LAG = Gauge(
    "kafka_consumer_lag_records",
    "Records of a partition the group has not committed yet (end offset minus committed offset), per partition "
    "this replica holds",
    ["service", "group", "topic", "partition"],
)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# Handles a whole batch's events (not the duplicates) at once, as the handler would one by one (servicekit docs).
BatchHandler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]
# Runs first in each transaction with the events about to be handled in it (not the duplicates).
Prepare = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


# SQLSTATEs that say the database is away, not that the event is wrong: connection exceptions (class 08), the
# server shutting down or starting (57P01-57P03), too many connections (53300); or that the transaction lost a
# race with another one and would succeed if run again: serialization failure (40001), deadlock (40P01).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")


def is_infrastructure_error(exc: BaseException) -> bool:
    """Not the event's fault: the database or the network is away, or the transaction lost a race. The batch
    is fetched again later, never dead-lettered."""
    if isinstance(exc, OSError | DisconnectionError | TimeoutError | KafkaError):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError)
            or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
        )
    return False


@dataclass
class DeadLetters:
    """Publishes records that cannot be handled to `<topic>.dlq`, with the reason in headers."""

    kafka: str | KafkaAccess
    _producer: AIOKafkaProducer | None = field(default=None, init=False)

    async def send(self, record: ConsumerRecord[Any, Any], consumer: str, reason: str, error: str) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(**kafka_access(self.kafka).client_options(), acks="all")
            await producer.start()
            self._producer = producer
        headers = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
        headers += [
            ("dlq_reason", reason.encode()),
            ("dlq_error", error[:4000].encode()),
            ("dlq_consumer", consumer.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
        ]
        await self._producer.send_and_wait(f"{record.topic}.dlq", value=record.value, key=record.key, headers=headers)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass
class OffsetCommitter:
    """Commits the offsets of handled records only, after `every` records or `seconds`, whichever first."""

    every: int = 1000
    seconds: float = 1.0
    _pending: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    _since_commit: int = field(default=0, init=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    async def handled(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, next_offset: int, count: int
    ) -> None:
        """`count` records of `partition` are done, up to `next_offset` (exclusive)."""
        self._consumer = consumer
        self._pending[partition] = next_offset
        self._since_commit += count
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_periodically())
        if self._since_commit >= self.every:
            await self.commit()

    async def commit(self) -> None:
        if not self._pending or self._consumer is None:
            return
        offsets, self._pending, self._since_commit = self._pending, {}, 0
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # e.g. partitions revoked by a rebalance: their new owner re-reads them
            log.warning("offset commit failed (%r); those records will be delivered again", exc)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self.commit()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        await self.commit()


@dataclass
class _Outcomes:
    """What became of a partition's records; counted and dead-lettered once their transaction committed."""

    counts: Tally[str] = field(default_factory=Tally)
    dead: list[tuple[ConsumerRecord[Any, Any], str, str]] = field(default_factory=list)

    def dead_letter(self, record: ConsumerRecord[Any, Any], reason: str, error: str) -> None:
        self.dead.append((record, reason, error))
        self.counts["dead_lettered"] += 1


@dataclass
class Consumer:
    """One subscription: a consumer group on one topic, handling some of its event types."""

    service: str
    name: str
    topic: str
    handler: Handler
    events: Collection[type[Event]] | None
    db: Database
    dead_letters: DeadLetters
    max_attempts: int = 3
    backoff_seconds: float = 0.2
    batch_size: int = 500
    committer: OffsetCommitter = field(default_factory=OffsetCommitter)
    prepare: Prepare | None = None
    batch_handler: BatchHandler | None = None
    _infra_failures: int = field(default=0, init=False)
    _subscriber: Any = field(default=None, init=False)
    _measured: set[int] = field(default_factory=set, init=False)

    @property
    def group(self) -> str:
        return f"{self.service}.{self.name}"

    def subscribe(self, broker: KafkaBroker) -> None:
        async def on_batch(message: KafkaMessage) -> None:
            records = message.raw_message
            assert isinstance(records, tuple)
            await self.process_batch(message.consumer, records)

        self._subscriber = broker.subscriber(
            self.topic,
            group_id=self.group,
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=50,  # FastStream sleeps this long after an empty poll: it bounds the idle latency
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            max_poll_interval_ms=120_000,
            decoder=_raw_records_only,
            fetch_max_wait_ms=500,  # a long poll: the broker answers as soon as a record arrives
        )
        self._subscriber(on_batch)
        for outcome in OUTCOMES:  # every outcome's series from the start, at 0: rates and alerts see it from there
            EVENTS_CONSUMED.labels(self.service, self.name, self.topic, outcome)

    async def measure_lag(self) -> None:
        """CONSUMER_LAG of the partitions this replica holds, from the broker's end offsets and the group's committed
        offsets (asked of Kafka, so a consumer stuck in a handler shows its lag growing); partitions it no longer
        holds are dropped from the gauge."""
        kafka: AIOKafkaConsumer | None = getattr(self._subscriber, "consumer", None)
        held = kafka.assignment() if kafka is not None else set()
        if kafka is not None and held:
            ends = await kafka.end_offsets(list(held))
            for partition, end in ends.items():
                committed = await kafka.committed(partition)
                lag = end - (committed if committed is not None and committed >= 0 else 0)
                CONSUMER_LAG.labels(self.service, self.group, self.topic, str(partition.partition)).set(lag)
        now_held = {partition.partition for partition in held}
        for gone in self._measured - now_held:
            CONSUMER_LAG.remove(self.service, self.group, self.topic, str(gone))
        self._measured = now_held

    async def close(self) -> None:
        """Commit what has been handled; call before the broker stops."""
        await self.committer.close()

    async def process_batch(self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply a fetched batch, partitions concurrently; commit what is done, seek back what is not."""
        by_partition: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        for record in records:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        results = await asyncio.gather(
            *(self._apply_partition(batch) for batch in by_partition.values()), return_exceptions=True
        )
        failure: BaseException | None = None
        for (partition, batch), result in zip(by_partition.items(), results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                with contextlib.suppress(IllegalStateError):  # revoked meanwhile: its new owner reads it again
                    consumer.seek(partition, batch[0].offset)  # fetched again; nothing of it is committed
            else:
                await self.committer.handled(consumer, partition, batch[-1].offset + 1, len(batch))
        if failure is not None:
            if not isinstance(failure, Exception):
                raise failure  # cancellation: the process is stopping
            await self._pause_for_infrastructure(failure)
        else:
            self._infra_failures = 0

    async def _apply_partition(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        outcomes = _Outcomes()
        envelopes: list[tuple[ConsumerRecord[Any, Any], Envelope]] = []
        for record in records:
            try:
                envelope = decode(record.topic, record.key, record.value, record.headers or ())
            except ContractError as exc:
                log.error("undecodable record at %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)
                outcomes.dead_letter(record, "malformed", str(exc))
                continue
            if self.events is not None and type(envelope.event) not in self.events:
                outcomes.counts["ignored"] += 1
            else:
                envelopes.append((record, envelope))
        try:
            await self._apply_in_one_transaction(envelopes, outcomes, careful=False)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.warning(
                "a batch of %d events failed (%r); applying it again, a savepoint per event", len(envelopes), exc
            )
            try:
                await self._apply_in_one_transaction(envelopes, outcomes, careful=True)
            except Exception as exc:
                if is_infrastructure_error(exc):
                    raise
                log.warning("the batch failed as a whole (%r); applying its events one per transaction", exc)
                for one in envelopes:
                    await self._apply_alone(one, outcomes)
        await self._send_dead_letters(outcomes)
        for outcome, count in outcomes.counts.items():
            EVENTS_CONSUMED.labels(self.service, self.name, self.topic, outcome).inc(count)

    async def _apply_alone(self, item: tuple[ConsumerRecord[Any, Any], Envelope], outcomes: _Outcomes) -> None:
        alone = _Outcomes()
        try:
            await self._apply_in_one_transaction([item], alone, careful=True)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.exception("%s failed in a transaction of its own; dead-lettering", item[1].type)
            alone = _Outcomes()
            alone.dead_letter(item[0], "handler_failed", _describe(exc))
        outcomes.counts.update(alone.counts)
        outcomes.dead += alone.dead

    async def _apply_in_one_transaction(
        self, envelopes: list[tuple[ConsumerRecord[Any, Any], Envelope]], outcomes: _Outcomes, *, careful: bool
    ) -> None:
        """Claim the events and run their handlers in one transaction. Not `careful`: the first error aborts it
        all (savepoints cost more than the handlers themselves, and most batches fail nowhere); the batch handler,
        when there is one, takes them all at once. `careful`: each
        handler in its own savepoint, retried there, and dead-lettered alone. Outcomes count once committed."""
        if not envelopes:
            return
        counts: Tally[str] = Tally()
        dead: list[tuple[ConsumerRecord[Any, Any], str, str]] = []
        async with self.db.transaction() as session:
            unclaimed = await inbox.claim_all(session, self.name, [envelope.id for _, envelope in envelopes])
            fresh: list[tuple[ConsumerRecord[Any, Any], Envelope]] = []
            for record, envelope in envelopes:
                if envelope.id in unclaimed:
                    unclaimed.discard(envelope.id)  # a second copy in this very batch is a duplicate too
                    fresh.append((record, envelope))
                else:
                    counts["duplicate"] += 1
            if self.prepare is not None and fresh:
                await self.prepare(session, [envelope for _, envelope in fresh])
            if self.batch_handler is not None and not careful and fresh:
                await self.batch_handler(session, [envelope for _, envelope in fresh])
                counts["processed"] += len(fresh)
            else:
                for record, envelope in fresh:
                    with context.handling(envelope):
                        if not careful:
                            await self.handler(session, envelope)
                            error = None
                        else:
                            error = await self._handle_in_savepoint(session, envelope, counts)
                    if error is None:
                        counts["processed"] += 1
                    else:
                        await inbox.release(session, self.name, envelope.id)  # so that a replay takes effect
                        dead.append((record, "handler_failed", _describe(error)))
        outcomes.counts.update(counts)
        for letter in dead:
            outcomes.dead_letter(*letter)

    async def _handle_in_savepoint(
        self, session: AsyncSession, envelope: Envelope, counts: Tally[str]
    ) -> Exception | None:
        """Run the handler in a savepoint, retried in place; the last error when every attempt failed."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with session.begin_nested():
                    await self.handler(session, envelope)
                return None
            except Exception as exc:
                if is_infrastructure_error(exc):
                    raise
                if attempt == self.max_attempts:
                    log.exception("%s failed %d times; dead-lettering", envelope.type, attempt)
                    return exc
                counts["retried"] += 1
                log.warning("%s failed (attempt %d): %r; retrying", envelope.type, attempt, exc)
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _send_dead_letters(self, outcomes: _Outcomes) -> None:
        for record, reason, error in outcomes.dead:
            await self.dead_letters.send(record, self.name, reason, error)

    async def _pause_for_infrastructure(self, exc: BaseException) -> None:
        self._infra_failures += 1
        delay = min(self.backoff_seconds * 2**self._infra_failures, 15.0)
        log.warning("infrastructure unavailable (%r); records will be fetched again in %.1fs", exc, delay)
        await asyncio.sleep(delay)


async def _raw_records_only(message: Any) -> None:
    """FastStream's decoder would parse every record's JSON for nothing: handlers decode the contracts."""
    return None


def _describe(exc: BaseException) -> str:
    """The error a dead letter carries in its `dlq_error` header: a database or validation error's text may
    quote the values it was handed (a mail's link and its token, an address), so only its kind is kept."""
    return safe_error_text(exc)
