"""Transactional outbox: events are rows written in the business transaction; a relay publishes them.

The relay holds a PostgreSQL advisory lock, so among several replicas exactly one publishes at a time, in
id order; it wakes on LISTEN/NOTIFY and also polls, and keeps rows until Kafka has acknowledged them, so a
Kafka outage only delays events. A crash between publish and mark-sent republishes: consumers dedupe by
event id (the inbox).
"""

import asyncio
import itertools
import json
import logging
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import Counter, Gauge
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, encode
from servicekit import context
from servicekit.db import OUTBOX_CHANNEL, libpq_dsn, outbox
from servicekit.kafka import KafkaAccess, kafka_access

log = logging.getLogger(__name__)

OUTBOX_BACKLOG = Gauge("outbox_backlog_events", "Committed events not yet published", ["service"])
OUTBOX_AGE = Gauge("outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished event", ["service"])
OUTBOX_PUBLISHED = Counter("outbox_published_events_total", "Events published by the relay", ["service"])
OUTBOX_LEADER = Gauge("outbox_relay_leader", "1 while this replica's relay holds the publishing lock", ["service"])


class Outbox:
    """Writes events into the caller's transaction."""

    def __init__(self, source: str) -> None:
        self.source = source

    async def add(self, session: AsyncSession, event: Event) -> uuid.UUID:
        (event_id,) = await self.add_all(session, [event])
        return event_id

    async def add_all(self, session: AsyncSession, events: Sequence[Event]) -> list[uuid.UUID]:
        """Several events in one statement, published in this order."""
        return await self._insert(session, [self.row(event) for event in events])

    def row(self, event: Event) -> dict[str, Any]:
        """The outbox row of an event, for a statement that writes it itself (e.g. a database function deciding
        whether it is written at all): event_id, topic, key, value and headers."""
        return self._row(event, context.current_correlation_id(), context.causation_id.get())

    async def add_caused(
        self, session: AsyncSession, caused: Sequence[tuple[Envelope, Sequence[Event]]]
    ) -> list[uuid.UUID]:
        """The events each of several handled events caused (a batch handler's), in one statement, in this order;
        each carries the correlation id of its cause, and the cause's id as its causation id."""
        rows = [
            self._row(event, cause.correlation_id or context.current_correlation_id(), str(cause.id))
            for cause, events in caused
            for event in events
        ]
        return await self._insert(session, rows)

    async def _insert(self, session: AsyncSession, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
        if rows:
            await session.execute(insert(outbox), rows)
        return [row["event_id"] for row in rows]

    def _row(self, event: Event, correlation_id: str, causation_id: str | None) -> dict[str, Any]:
        event_id = uuid.uuid4()
        record = encode(
            event,
            source=self.source,
            event_id=event_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return {
            "event_id": event_id,
            "topic": record.topic,
            "key": record.key,
            "value": record.value,
            "headers": [[name, value.decode()] for name, value in record.headers],
        }


PURGE_EVERY_SECONDS = 3600
MEASURE_EVERY_SECONDS = 1.0
PUBLISHED_RETENTION_DAYS = 7  # published rows are kept a while for audit and replay by hand


@dataclass
class _Flight:
    """Rows handed to the producer, and the futures of Kafka's acknowledgements, in id order."""

    rows: Sequence[asyncpg.Record]
    acks: list[asyncio.Future[Any]]

    @property
    def ids(self) -> list[int]:
        return [row["id"] for row in self.rows]


class OutboxRelay:
    """Publishes committed outbox rows in id order while it holds the service's advisory lock.

    Pipelined: batch n+1 is read and handed to the producer while Kafka acknowledges batch n; then batch n
    is marked sent in one statement, up to its first unacknowledged row. A failure (Kafka, database, lost
    lock) drops everything in flight and starts over from the rows still unmarked.
    """

    def __init__(
        self,
        database_url: str,
        kafka: str | KafkaAccess,
        *,
        service: str,
        poll_seconds: float = 2.0,
        batch_size: int = 500,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self.dsn = libpq_dsn(database_url)
        self.kafka = kafka_access(kafka)
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.request_timeout_ms = request_timeout_ms
        self.lock_key = zlib.crc32(f"outbox-relay:{service}".encode())
        self._wake = asyncio.Event()
        self.is_leader = False
        self.listening = False  # True while idle on LISTEN, waiting for a NOTIFY or the next poll

    async def run(self) -> None:
        """Publish forever; every failure (database, Kafka, lost lock) backs off and starts over."""
        backoff = 0.5
        while True:
            try:
                await self._lead()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay interrupted: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._set_leader(False)
                self.listening = False

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
                await self._measure(conn)
                await asyncio.sleep(self.poll_seconds)
            self._set_leader(True)
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            producer = AIOKafkaProducer(
                **self.kafka.client_options(),
                enable_idempotence=True,
                acks="all",
                linger_ms=2,
                request_timeout_ms=self.request_timeout_ms,
            )
            await producer.start()
            try:
                await self._publish_forever(conn, producer)
            finally:
                await _stop_within(producer, seconds=5)
        finally:
            await asyncio.shield(conn.close(timeout=2))

    async def _publish_forever(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        purged_at = measured_at = 0.0
        previous: _Flight | None = None
        while True:
            if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:
                await purge_published(conn, PUBLISHED_RETENTION_DAYS)
                purged_at = time.monotonic()
            if time.monotonic() - measured_at > MEASURE_EVERY_SECONDS:
                await self._measure(conn)
                measured_at = time.monotonic()
            self._wake.clear()
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox "
                "WHERE published_at IS NULL AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1",
                self.batch_size,
                previous.ids if previous else [],
            )
            current = await self._send(producer, rows)
            if previous is not None:
                await self._mark_acknowledged(conn, previous)
            previous = current if rows else None
            if previous is None:
                await self._measure(conn)
                measured_at = time.monotonic()
                self.listening = True
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
                finally:
                    self.listening = False

    @staticmethod
    async def _send(producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record]) -> _Flight:
        acks = [
            await producer.send(
                row["topic"],
                value=row["value"],
                key=row["key"],
                headers=[(name, value.encode()) for name, value in _json(row["headers"])],
            )
            for row in rows
        ]
        return _Flight(rows, acks)

    async def _mark_acknowledged(self, conn: asyncpg.Connection, flight: _Flight) -> None:
        """Mark sent what Kafka acknowledged, keeping id order: only the prefix before the first row that failed
        or is still unacknowledged after the request timeout (the idempotent producer itself never gives up)."""
        await asyncio.wait(flight.acks, timeout=self.request_timeout_ms / 1000)
        acknowledged = sum(1 for _ in itertools.takewhile(_succeeded, flight.acks))
        if acknowledged:
            ids = flight.ids[:acknowledged]
            await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids)
            OUTBOX_PUBLISHED.labels(self.service).inc(acknowledged)
        if acknowledged < len(flight.acks):
            first = flight.acks[acknowledged]
            if first.done() and first.exception() is not None:
                raise first.exception()  # type: ignore[misc]
            raise KafkaTimeoutError(
                f"{len(flight.acks) - acknowledged} records unacknowledged after {self.request_timeout_ms} ms"
            )

    async def _measure(self, conn: asyncpg.Connection) -> None:
        backlog, age = await conn.fetchrow(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
            "FROM outbox WHERE published_at IS NULL"
        )
        OUTBOX_BACKLOG.labels(self.service).set(backlog)
        OUTBOX_AGE.labels(self.service).set(float(age))

    def _set_leader(self, leader: bool) -> None:
        self.is_leader = leader
        OUTBOX_LEADER.labels(self.service).set(1 if leader else 0)


def _succeeded(ack: "asyncio.Future[Any]") -> bool:
    return ack.done() and not ack.cancelled() and ack.exception() is None


async def _stop_within(producer: AIOKafkaProducer, seconds: float) -> None:
    """Stop the producer; with Kafka away it would wait forever to flush, so give up on its unsent records
    (they were not marked sent: the next leader publishes them again)."""
    try:
        await asyncio.wait_for(producer.stop(), seconds)
    except TimeoutError:
        log.warning("the relay's producer did not flush within %.0f s; its unsent records will be republished", seconds)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def purge_published(conn: asyncpg.Connection, older_than_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(status.split()[-1])
