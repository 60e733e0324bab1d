"""Kafka consumers on FastStream: decode the contract, run the handler once per event id, commit after.

Per message: a record that does not decode goes straight to `<topic>.dlq`; a handler error is retried
in place with backoff up to `max_attempts`, then dead-lettered; an infrastructure error (database or
network down) is not the message's fault, so the consumer seeks back and fetches the record again after a
growing pause. Offsets are committed explicitly, only up to records already handled, in batches (every
`commit_every` records or `commit_seconds`): a crash re-delivers at most one batch, which the inbox absorbs.
"""

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import ContractError, Envelope, Event, decode
from servicekit import context, inbox
from servicekit.db import Database

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter(
    "consumer_events_total",
    "Events handled by consumers, by outcome (processed, duplicate, ignored, retried, dead_lettered)",
    ["service", "consumer", "topic", "outcome"],
)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]


def is_infrastructure_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError | DisconnectionError | TimeoutError | KafkaError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError)
    return False


@dataclass
class DeadLetters:
    """Publishes records that cannot be handled to `<topic>.dlq`, with the reason in headers."""

    bootstrap_servers: str
    _producer: AIOKafkaProducer | None = field(default=None, init=False)

    async def send(self, record: ConsumerRecord[Any, Any], consumer: str, reason: str, error: str) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
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

    every: int = 100
    seconds: float = 1.0
    _pending: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    _since_commit: int = field(default=0, init=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    async def handled(self, consumer: AIOKafkaConsumer, record: ConsumerRecord[Any, Any]) -> None:
        self._consumer = consumer
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self._since_commit += 1
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
    committer: OffsetCommitter = field(default_factory=OffsetCommitter)
    _infra_failures: int = field(default=0, init=False)

    def subscribe(self, broker: KafkaBroker) -> None:
        async def on_message(message: KafkaMessage) -> None:
            record = message.raw_message
            assert isinstance(record, ConsumerRecord)
            try:
                await self.process(record)
            except Exception:
                await message.nack()  # seek back: the record is fetched again, nothing after it is committed
                return
            await self.committer.handled(message.consumer, record)

        broker.subscriber(
            self.topic,
            group_id=f"{self.service}.{self.name}",
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            max_poll_interval_ms=120_000,
            fetch_max_wait_ms=100,
        )(on_message)

    async def close(self) -> None:
        """Commit what has been handled; call before the broker stops."""
        await self.committer.close()

    async def process(self, record: ConsumerRecord[Any, Any]) -> None:
        try:
            envelope = decode(record.topic, record.key, record.value, record.headers or ())
        except ContractError as exc:
            log.error("undecodable record at %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)
            await self._dead_letter(record, "malformed", str(exc))
            return
        if self.events is not None and type(envelope.event) not in self.events:
            self._count("ignored")
            return
        context.correlation_id.set(envelope.correlation_id)
        context.causation_id.set(str(envelope.id))
        context.event_id.set(str(envelope.id))
        try:
            await self._handle_with_retries(record, envelope)
        finally:
            context.event_id.set(None)
            context.causation_id.set(None)

    async def _handle_with_retries(self, record: ConsumerRecord[Any, Any], envelope: Envelope) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.db.transaction() as session:
                    if not await inbox.claim(session, self.name, envelope.id):
                        self._count("duplicate")
                        return
                    await self.handler(session, envelope)
                self._infra_failures = 0
                self._count("processed")
                return
            except Exception as exc:
                if is_infrastructure_error(exc):
                    await self._pause_for_infrastructure(exc)
                    raise
                if attempt == self.max_attempts:
                    log.exception("%s failed %d times; dead-lettering", envelope.type, attempt)
                    await self._dead_letter(record, "handler_failed", _describe(exc))
                    return
                self._count("retried")
                log.warning("%s failed (attempt %d): %r; retrying", envelope.type, attempt, exc)
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))

    async def _pause_for_infrastructure(self, exc: BaseException) -> None:
        self._infra_failures += 1
        delay = min(self.backoff_seconds * 2**self._infra_failures, 15.0)
        log.warning("infrastructure unavailable (%r); record will be fetched again in %.1fs", exc, delay)
        await asyncio.sleep(delay)

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], reason: str, error: str) -> None:
        try:
            await self.dead_letters.send(record, self.name, reason, error)
        except Exception as exc:
            await self._pause_for_infrastructure(exc)
            raise
        self._count("dead_lettered")

    def _count(self, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self.service, self.name, self.topic, outcome).inc()


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()
