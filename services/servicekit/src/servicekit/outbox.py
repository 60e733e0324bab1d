"""Transactional outbox: events are rows written in the business transaction; a relay publishes them.

The relay holds a PostgreSQL advisory lock, so among several replicas exactly one publishes at a time, in
id order; it wakes on LISTEN/NOTIFY and also polls, and keeps rows until Kafka has acknowledged them, so a
Kafka outage only delays events. A crash between publish and mark-sent republishes: consumers dedupe by
event id (the inbox).
"""

import asyncio
import json
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Event, encode
from servicekit import context
from servicekit.db import OUTBOX_CHANNEL, libpq_dsn, outbox

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
        rows = [self._row(event) for event in events]
        if rows:
            await session.execute(insert(outbox), rows)
        return [row["event_id"] for row in rows]

    def _row(self, event: Event) -> dict[str, Any]:
        event_id = uuid.uuid4()
        record = encode(
            event,
            source=self.source,
            event_id=event_id,
            correlation_id=context.current_correlation_id(),
            causation_id=context.causation_id.get(),
        )
        return {
            "event_id": event_id,
            "topic": record.topic,
            "key": record.key,
            "value": record.value,
            "headers": [[name, value.decode()] for name, value in record.headers],
        }


PURGE_EVERY_SECONDS = 3600
PUBLISHED_RETENTION_DAYS = 7  # published rows are kept a while for audit and replay by hand

PublishedHook = Callable[[Sequence[asyncpg.Record]], Awaitable[None]]


class OutboxRelay:
    def __init__(
        self,
        database_url: str,
        bootstrap_servers: str,
        *,
        service: str,
        poll_seconds: float = 2.0,
        batch_size: int = 500,
        after_publish: PublishedHook | None = None,
    ) -> None:
        self.dsn = libpq_dsn(database_url)
        self.bootstrap_servers = bootstrap_servers
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.after_publish = after_publish
        self.lock_key = zlib.crc32(f"outbox-relay:{service}".encode())
        self._wake = asyncio.Event()
        self.is_leader = False

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

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
                await self._measure(conn)
                await asyncio.sleep(self.poll_seconds)
            self._set_leader(True)
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                enable_idempotence=True,
                acks="all",
                linger_ms=2,
                request_timeout_ms=30_000,
            )
            await producer.start()
            purged_at = 0.0
            try:
                while True:
                    if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:
                        await purge_published(conn, PUBLISHED_RETENTION_DAYS)
                        purged_at = time.monotonic()
                    self._wake.clear()
                    if await self._publish_batch(conn, producer) < self.batch_size:
                        await self._measure(conn)
                        try:
                            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                        except TimeoutError:
                            pass
            finally:
                await producer.stop()
        finally:
            await asyncio.shield(conn.close(timeout=2))

    async def _publish_batch(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            return 0
        deliveries = [
            await producer.send(
                row["topic"],
                value=row["value"],
                key=row["key"],
                headers=[(name, value.encode()) for name, value in _json(row["headers"])],
            )
            for row in rows
        ]
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        # Keep id order: mark only the prefix that Kafka acknowledged.
        acknowledged = [row["id"] for row, _ in zip(rows, _until_failure(results), strict=False)]
        if self.after_publish is not None:
            await self.after_publish(rows[: len(acknowledged)])
        if acknowledged:
            await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", acknowledged)
            OUTBOX_PUBLISHED.labels(self.service).inc(len(acknowledged))
        if failure is not None:
            raise failure
        return len(rows)

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


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _until_failure(results: Sequence[Any]) -> list[Any]:
    prefix = []
    for result in results:
        if isinstance(result, BaseException):
            break
        prefix.append(result)
    return prefix


async def purge_published(conn: asyncpg.Connection, older_than_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(status.split()[-1])
