"""Outbox -> Kafka -> inbox: throughput and end-to-end latency of 10,000 events, beside raw aiokafka
produce+consume of the same records measured in the same run (the baseline).

    make bench        (or: uv run python tests/bench/outbox_throughput.py [--events N])

Starts its own Kafka and PostgreSQL (state in .run/bench, ports 3xxxx) and stops them at the end.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests")]

import devstack  # noqa: E402
from contracts import encode  # noqa: E402
from kit import TOPIC, event, prepared_database, start_consumer, stop_consumer  # noqa: E402
from servicekit.kafka import ensure_topics  # noqa: E402
from servicekit.outbox import Outbox, OutboxRelay  # noqa: E402


async def raw_kafka(bootstrap: str, n: int) -> float:
    """Seconds to produce n contract records with aiokafka and consume them back in a consumer group."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [topic])
    key = uuid.uuid4()
    records = [encode(event(key, i), source="bench") for i in range(n)]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        sends = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
        await asyncio.gather(*sends)
        received = 0
        while received < n:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                received += len(batch)
            await consumer.commit()
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def through_outbox(stack: "devstack.Stack", n: int, per_second: float | None = None) -> tuple[float, list[float]]:
    """Seconds from the first commit to the last effect, and each event's commit-to-effect latency (ms).
    Events are committed 100 per transaction as fast as possible, or one by one at `per_second`."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    stack.ensure_database(name)
    url = stack.database_url(name)
    db = await prepared_database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE effects ADD COLUMN done_at timestamptz DEFAULT clock_timestamp()"))
    keys = [uuid.uuid4() for _ in range(50)]
    wanted = {str(k) for k in keys}

    async def handler(session, envelope):  # type: ignore[no-untyped-def]
        if envelope.subject in wanted:
            await session.execute(
                text("INSERT INTO effects (event_id, key, seq) VALUES (:id, :key, 0)"),
                {"id": envelope.id, "key": envelope.subject},
            )

    broker, consumer = await start_consumer(db, stack.kafka_bootstrap, handler)
    relay = asyncio.create_task(OutboxRelay(url, stack.kafka_bootstrap, service="bench").run())
    outbox = Outbox("bench")
    try:
        started = time.perf_counter()
        per_transaction = 1 if per_second else 100
        for batch in range(n // per_transaction):
            async with db.transaction() as session:
                for i in range(per_transaction):
                    await outbox.add(session, event(keys[i % len(keys)], batch * per_transaction + i))
            if per_second:
                await asyncio.sleep(max(0.0, started + (batch + 1) / per_second - time.perf_counter()))
        while True:
            async with db.engine.connect() as conn:
                if await conn.scalar(text("SELECT count(*) FROM effects")) >= n:
                    break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT extract(epoch FROM e.done_at - o.created_at) * 1000 "
                    "FROM effects e JOIN outbox o ON o.event_id = e.event_id"
                )
            )
            latencies = [float(r[0]) for r in rows]
        return elapsed, latencies
    finally:
        relay.cancel()
        await stop_consumer(broker, consumer)
        await db.dispose()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main(n: int) -> None:
    stack = devstack.Stack(
        ROOT / ".run" / "bench",
        devstack.Ports(kafka=39092, kafka_controller=39093, postgres=35433, smtp=31025, mail_http=38025),
        fast=os.environ.get("BENCH_FAST_DB") == "1",
    )
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)  # old events on the topic would be consumed again
    await asyncio.to_thread(stack.start)
    try:
        await ensure_topics(stack.kafka_bootstrap, [TOPIC, f"{TOPIC}.dlq"])
        raw = await raw_kafka(stack.kafka_bootstrap, n)
        # Paced first: each phase's new consumer group reads the shared topic from its beginning.
        _, paced_latencies = await through_outbox(stack, 500, per_second=50)
        outbox_elapsed, latencies = await through_outbox(stack, n)
    finally:
        await asyncio.to_thread(stack.stop)
    print(f"events: {n}")
    print(f"raw aiokafka produce+consume : {n / raw:9.0f} events/s  ({raw:.2f} s)")
    print(f"outbox -> kafka -> inbox     : {n / outbox_elapsed:9.0f} events/s  ({outbox_elapsed:.2f} s)")
    print(f"ratio outbox / raw           : {raw / outbox_elapsed:9.2f}")
    print(
        f"end-to-end latency (commit -> effect committed): p50 {percentile(latencies, 50):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms  (queueing behind the burst)"
    )
    print(
        f"latency at a steady 50 events/s (500 events): p50 {percentile(paced_latencies, 50):.0f} ms, "
        f"p99 {percentile(paced_latencies, 99):.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().events))
