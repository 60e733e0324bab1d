"""Kafka consumers on FastStream: decode the contract, run the handler once per event id, commit after.

Per message: a record that does not decode goes straight to `<topic>.dlq`; a handler error is retried
in place with backoff up to `max_attempts`, then dead-lettered; an infrastructure error (database or
network down) is not the message's fault, so the offset is not committed and the record is fetched again
after a growing pause. FastStream's NACK_ON_ERROR policy seeks back on that raise and commits otherwise.
"""

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
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
    _infra_failures: int = field(default=0, init=False)

    def subscribe(self, broker: KafkaBroker) -> None:
        async def on_message(message: KafkaMessage) -> None:
            await self.process(message.raw_message)

        broker.subscriber(
            self.topic,
            group_id=f"{self.service}.{self.name}",
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_poll_interval_ms=120_000,
        )(on_message)

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
