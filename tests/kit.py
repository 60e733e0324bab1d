"""Test harness against the real Kafka and PostgreSQL: a tiny service whose handler records each effect in an
`effects` table, so tests can count effects and check their order; and readers of what is on a topic."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, Event, encode
from contracts.events.accounts import AccountVerified
from servicekit.consumer import Consumer, DeadLetters
from servicekit.db import Database, install_kit_tables
from servicekit.kafka import topic_partitions

TOPIC = "accounts.account"


def event(account_id: uuid.UUID, seq: int) -> AccountVerified:
    """A contract event whose email carries a sequence number, to check order per key."""
    return AccountVerified(account_id=account_id, email=f"seq-{seq}@test.example", verified_at="2026-01-01T00:00:00Z")


def seq_of(event: Any) -> int:
    return int(event.email.split("@")[0].removeprefix("seq-"))


async def prepared_database(url: str) -> Database:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(install_kit_tables)
        await conn.execute(
            text("CREATE TABLE effects (id serial PRIMARY KEY, event_id uuid NOT NULL, key text NOT NULL, seq int)")
        )
    return db


def recording_handler(keys: set[str]) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    """Records events of this test's keys (the topic is shared with other tests)."""

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.subject not in keys:
            return
        await session.execute(
            text("INSERT INTO effects (event_id, key, seq) VALUES (:id, :key, :seq)"),
            {"id": envelope.id, "key": envelope.subject, "seq": seq_of(envelope.event)},
        )

    return handle


async def start_consumer(
    db: Database, bootstrap: str, handler: Callable[[AsyncSession, Envelope], Awaitable[None]], **options: Any
) -> tuple[KafkaBroker, Consumer]:
    broker = KafkaBroker(bootstrap, log_level=logging.DEBUG)
    consumer = Consumer(
        service="kit-test",
        name=f"test-{uuid.uuid4().hex[:8]}",
        topic=TOPIC,
        handler=handler,
        events=options.pop("events", None),
        db=db,
        dead_letters=DeadLetters(bootstrap),
        backoff_seconds=0.05,
        **options,
    )
    consumer.subscribe(broker)
    await broker.start()
    return broker, consumer


async def stop_consumer(broker: KafkaBroker, consumer: Consumer) -> None:
    await consumer.close()
    await broker.stop()
    await consumer.dead_letters.close()


async def effects(db: Database) -> list[tuple[uuid.UUID, str, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event_id, key, seq FROM effects ORDER BY id"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def records_with_keys(bootstrap: str, topic: str, keys: Iterable[str]) -> list[Any]:
    """Every record of `topic` (from the beginning up to its current end) whose key is one of `keys`."""
    wanted = {k.encode() for k in keys}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found += [r for r in batch if r.key in wanted and r.offset < ends[TopicPartition(r.topic, r.partition)]]
        return found
    finally:
        await consumer.stop()


async def caught_up(bootstrap: str, consumer: Consumer) -> bool:
    """True once the consumer group has committed up to the current end of its topic."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await probe.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{consumer.service}.{consumer.name}")
        partitions = await topic_partitions(bootstrap, consumer.topic)
        ends = await probe.end_offsets(partitions)
        return all((committed[tp].offset if tp in committed else 0) >= end for tp, end in ends.items())
    finally:
        await probe.stop()
        await admin.close()


async def publish(bootstrap: str, event: Event, source: str = "test") -> None:
    """One event on its topic, keyed and enveloped as its owning service publishes it."""
    record = encode(event, source=source)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()
