"""The reliability rules of DESIGN.md against the real Kafka and PostgreSQL."""

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import text

from contracts import encode
from kit import (
    TOPIC,
    caught_up,
    effects,
    event,
    prepared_database,
    recording_handler,
    records_with_keys,
    start_consumer,
    stop_consumer,
    wait_for,
)
from servicekit.dlq import read_dead_letters, replay
from servicekit.outbox import Outbox, OutboxRelay

pytestmark = pytest.mark.infra


def relay(url: str, bootstrap: str, **options) -> OutboxRelay:  # type: ignore[no-untyped-def]
    return OutboxRelay(url, bootstrap, service="kit-test", poll_seconds=0.5, **options)


async def test_a_rolled_back_transaction_publishes_nothing(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    outbox = Outbox("kit-test")
    rolled_back, committed = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await outbox.add(session, event(rolled_back, 1))
            raise RuntimeError("business rule failed")
    async with db.transaction() as session:
        await outbox.add(session, event(committed, 1))
    running = asyncio.create_task(relay(fresh_database, kafka).run())
    try:
        await wait_for(lambda: _published(db), what="the committed event to be published")
        assert len(await records_with_keys(kafka, TOPIC, [str(committed)])) == 1
        assert await records_with_keys(kafka, TOPIC, [str(rolled_back)]) == []
    finally:
        running.cancel()
        await db.dispose()


async def test_kafka_down_for_ten_seconds_loses_nothing_and_keeps_order_per_key(stack, fresh_database, kafka):
    db = await prepared_database(fresh_database)
    outbox = Outbox("kit-test")
    keys = [uuid.uuid4() for _ in range(10)]
    broker, consumer = await start_consumer(db, kafka, recording_handler({str(k) for k in keys}))
    running = asyncio.create_task(relay(fresh_database, kafka).run())
    try:
        await asyncio.to_thread(stack.stop_kafka)
        stopped_at = time.monotonic()
        for batch in range(100):
            async with db.transaction() as session:
                for key in keys:
                    await outbox.add(session, event(key, batch))
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - stopped_at)))
        await asyncio.to_thread(stack.start_kafka)
        await wait_for(lambda: _count(db, 1000), timeout=180, what="1000 effects after Kafka came back")
        done = await effects(db)
        assert len({event_id for event_id, _, _ in done}) == 1000
        for key in keys:
            assert [seq for _, k, seq in done if k == str(key)] == list(range(100))
    finally:
        running.cancel()
        await stop_consumer(broker, consumer)
        await db.dispose()


async def test_the_same_event_delivered_twice_has_one_effect(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    key = uuid.uuid4()
    broker, consumer = await start_consumer(db, kafka, recording_handler({str(key)}))
    record = encode(event(key, 7), source="kit-test")
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
        await wait_for(lambda: caught_up(kafka, consumer), what="both deliveries")
        assert len(await effects(db)) == 1
    finally:
        await producer.stop()
        await stop_consumer(broker, consumer)
        await db.dispose()


async def test_malformed_and_always_failing_messages_are_dead_lettered_and_replayable(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    malformed_key, failing, good = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    record_effect = recording_handler({str(failing), str(good)})
    broken = {str(failing)}

    async def handler(session, envelope):  # type: ignore[no-untyped-def]
        if envelope.subject in broken:
            raise ValueError("no rule for this event")
        await record_effect(session, envelope)

    broker, consumer = await start_consumer(db, kafka, handler)
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        # All three share a partition (same key) so the good one can only be handled after the others.
        same_partition = {"partition": 0}
        await producer.send_and_wait(
            TOPIC, b"{not json", key=str(malformed_key).encode(), headers=[("ce_id", b"x")], **same_partition
        )
        failing_record = encode(event(failing, 1), source="kit-test")
        failing_id = dict(failing_record.headers)["ce_id"].decode()
        await producer.send_and_wait(
            TOPIC, failing_record.value, key=failing_record.key, headers=failing_record.headers, **same_partition
        )
        good_record = encode(event(good, 2), source="kit-test")
        await producer.send_and_wait(
            TOPIC, good_record.value, key=good_record.key, headers=good_record.headers, **same_partition
        )
        await wait_for(lambda: _count(db, 1), what="the good message after the bad ones")
        letters = {
            letter.key.decode(): letter
            for letter in await read_dead_letters(kafka, TOPIC)
            if letter.key in {str(malformed_key).encode(), str(failing).encode()}
        }
        assert letters[str(malformed_key)].header("dlq_reason") == "malformed"
        assert letters[str(malformed_key)].value == b"{not json"
        assert letters[str(failing)].header("dlq_reason") == "handler_failed"
        assert "no rule for this event" in (letters[str(failing)].header("dlq_error") or "")
        assert letters[str(failing)].header("dlq_offset") is not None

        broken.clear()
        assert await replay(kafka, TOPIC, {failing_id}) == 1
        await wait_for(lambda: _count(db, 2), what="the replayed dead letter")
        assert {key for _, key, _ in await effects(db)} == {str(good), str(failing)}
    finally:
        await producer.stop()
        await stop_consumer(broker, consumer)
        await db.dispose()


async def test_two_relay_replicas_publish_each_event_once(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    outbox = Outbox("kit-test")
    keys = [uuid.uuid4() for _ in range(4)]
    replicas = [relay(fresh_database, kafka), relay(fresh_database, kafka)]
    tasks = [asyncio.create_task(r.run()) for r in replicas]
    try:
        for batch in range(50):
            async with db.transaction() as session:
                for key in keys:
                    await outbox.add(session, event(key, batch))
        await wait_for(lambda: _published(db), what="all 200 events published")
        assert sum(r.is_leader for r in replicas) == 1
        records = await records_with_keys(kafka, TOPIC, [str(k) for k in keys])
        ids = [dict(r.headers)["ce_id"] for r in records]
        assert len(ids) == 200
        assert len(set(ids)) == 200
    finally:
        for task in tasks:
            task.cancel()
        await db.dispose()


async def test_the_relay_wakes_on_notify_and_not_by_polling(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    sleepy = OutboxRelay(fresh_database, kafka, service="kit-test", poll_seconds=3600)
    task = asyncio.create_task(sleepy.run())
    try:
        await wait_for(lambda: _listening(sleepy), what="the relay to sleep on LISTEN")
        # Without the trigger's NOTIFY, a committed event stays unpublished: nothing polls it in the meantime.
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE outbox DISABLE TRIGGER outbox_notify"))
        async with db.transaction() as session:
            await Outbox("kit-test").add(session, event(uuid.uuid4(), 1))
        await asyncio.sleep(2)
        assert not await _published(db)
        assert sleepy.listening
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE outbox ENABLE TRIGGER outbox_notify"))
        async with db.transaction() as session:
            await Outbox("kit-test").add(session, event(uuid.uuid4(), 2))
        await wait_for(lambda: _published(db), timeout=10, what="the notified relay to publish both events")
    finally:
        task.cancel()
        await db.dispose()


async def _count(db, n):  # type: ignore[no-untyped-def]
    return len(await effects(db)) >= n


async def _published(db):  # type: ignore[no-untyped-def]
    async with db.engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))


async def _leader(relay):  # type: ignore[no-untyped-def]
    return relay.is_leader


async def _listening(relay):  # type: ignore[no-untyped-def]
    return relay.listening


async def test_a_batch_handler_takes_whole_batches_and_a_failing_one_goes_event_by_event(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    good, failing = [uuid.uuid4() for _ in range(4)], uuid.uuid4()
    record_effect = recording_handler({str(key) for key in [*good, failing]})
    batches: list[int] = []

    async def handler(session, envelope):  # type: ignore[no-untyped-def]
        if envelope.subject == str(failing):
            raise ValueError("no rule for this event")
        await record_effect(session, envelope)

    async def batch_handler(session, envelopes):  # type: ignore[no-untyped-def]
        batches.append(len(envelopes))
        for envelope in envelopes:  # what the handler does for each in turn
            await handler(session, envelope)

    broker, consumer = await start_consumer(db, kafka, handler, batch_handler=batch_handler)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=50)
    await producer.start()
    try:
        for seq, key in enumerate(good[:3]):
            record = encode(event(key, seq), source="kit-test")
            await producer.send(TOPIC, record.value, key=record.key, headers=record.headers, partition=0)
        await wait_for(lambda: _count(db, 3), what="the first batch")
        assert sum(batches) >= 3  # the batch handler took them
        taken = len(batches)
        for seq, key in enumerate([failing, good[3]], start=3):
            record = encode(event(key, seq), source="kit-test")
            await producer.send(TOPIC, record.value, key=record.key, headers=record.headers, partition=0)
        await producer.flush()
        await wait_for(lambda: _count(db, 4), what="the good event after the failing one")
        assert len(batches) > taken  # tried as a batch first, then one by one
        letters = [letter for letter in await read_dead_letters(kafka, TOPIC) if letter.key == str(failing).encode()]
        assert [letter.header("dlq_reason") for letter in letters] == ["handler_failed"]
        assert sorted(key for _, key, _ in await effects(db)) == sorted(str(key) for key in good)
    finally:
        await producer.stop()
        await stop_consumer(broker, consumer)
        await db.dispose()


async def test_consumer_lag_is_measured_per_partition_and_grows_while_a_handler_is_stuck(fresh_database, kafka):
    db = await prepared_database(fresh_database)
    stuck = [uuid.uuid4() for _ in range(4)]
    record_effect = recording_handler({str(key) for key in stuck})
    release = asyncio.Event()

    async def handler(session, envelope):  # type: ignore[no-untyped-def]
        if envelope.subject in {str(key) for key in stuck}:
            await release.wait()
        await record_effect(session, envelope)

    broker, consumer = await start_consumer(db, kafka, handler)
    labels = {"service": "kit-test", "group": consumer.group, "topic": TOPIC, "partition": "0"}

    async def lag_is(expected: int) -> bool:
        await consumer.measure_lag()
        return REGISTRY.get_sample_value("kafka_consumer_lag_records", labels) == expected

    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        await wait_for(lambda: caught_up(kafka, consumer), what="the topic's earlier records")
        await wait_for(lambda: lag_is(0), what="no lag once caught up")
        for seq, key in enumerate(stuck):
            record = encode(event(key, seq), source="kit-test")
            await producer.send_and_wait(TOPIC, record.value, key=record.key, headers=record.headers, partition=0)
        await wait_for(lambda: lag_is(4), what="the lag of four records held by a stuck handler")
        release.set()
        await wait_for(lambda: lag_is(0), what="no lag once the handler went on")
        assert len(await effects(db)) == 4
    finally:
        release.set()
        await producer.stop()
        await stop_consumer(broker, consumer)
        await db.dispose()
