"""Outbox -> Kafka -> inbox: burst throughput, latency at steady rates and CPU per process, beside raw aiokafka
produce+consume of the same records measured in the same run (the baseline).

    make bench        (or: uv run python tests/bench/outbox_throughput.py [--events N] [--seconds S])

Starts its own Kafka and PostgreSQL (state in .run/bench, ports 3xxxx) and stops them at the end. The relay and
the consumer run as processes of their own (tests/kit_process.py), as in a deployment where one service
publishes and another consumes; this process writes the business transactions. Latency is from the commit of
an event (its outbox row) to the commit of its effect (PostgreSQL's commit timestamps).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests")]

import devstack  # noqa: E402
from contracts import encode  # noqa: E402
from kit import TOPIC, event, prepared_database  # noqa: E402
from servicekit.db import Database  # noqa: E402
from servicekit.kafka import ensure_topics  # noqa: E402
from servicekit.outbox import Outbox  # noqa: E402

KEYS_PER_PHASE = 50
STEADY_RATES = (500, 1000, 1500, 2000, 3000, 4000)  # events/s; the ladder stops at the first p99 >= 100 ms
TICK_SECONDS = 0.01  # at a steady rate, the events of each 10 ms commit together (many concurrent writers)


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


class Pipeline:
    """The relay and the consumer as child processes on one database, and the keys of each phase."""

    def __init__(self, stack: "devstack.Stack", db: Database, url: str, phases: int) -> None:
        self.stack, self.db, self.url = stack, db, url
        self.keys = [[uuid.uuid4() for _ in range(KEYS_PER_PHASE)] for _ in range(phases)]
        self.phase = 0
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, workdir: Path) -> None:
        keys_file = workdir / "keys"
        keys_file.write_text("\n".join(str(k) for phase in self.keys for k in phase))
        common = ["--database-url", self.url, "--bootstrap", self.stack.kafka_bootstrap]
        roles = {"relay": ["relay"], "consumer": ["consumer", "--group", "bench", "--keys-file", str(keys_file)]}
        for name, role in roles.items():
            argv = [sys.executable, str(ROOT / "tests" / "kit_process.py"), *role, *common]
            log = (self.stack.log_dir / f"bench-{name}.log").open("ab")
            self.children[name] = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop(self) -> None:
        for child in self.children.values():
            child.kill()
            child.wait()

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Every process that does the work, grouped as reported (PostgreSQL with its backends)."""
        found = {name: [psutil.Process(child.pid)] for name, child in self.children.items()}
        for name in ("kafka", "postgres"):
            main = self.stack._process(name)
            if main is not None:
                found[name] = [main, *main.children(recursive=True)]
        found["writer (this process)"] = [psutil.Process()]
        return found

    def next_keys(self) -> list[uuid.UUID]:
        keys = self.keys[self.phase]
        self.phase += 1
        return keys

    async def run(self, events_per_tick: Iterator[int]) -> tuple[float, list[float]]:
        """Commit events (a transaction per tick), wait for every effect; (seconds from the first commit to the
        last effect's commit, each event's commit-to-effect latency in ms)."""
        keys = self.next_keys()
        outbox = Outbox("bench")
        seq = 0
        async with self.db.engine.connect() as conn:
            started_at = await conn.scalar(text("SELECT clock_timestamp()"))
        for count in events_per_tick:
            async with self.db.transaction() as session:
                await outbox.add_all(session, [event(keys[(seq + i) % len(keys)], seq + i) for i in range(count)])
            seq += count
        key_list = [str(k) for k in keys]
        async with self.db.engine.connect() as conn:
            deadline = time.monotonic() + 300
            while await conn.scalar(text("SELECT count(*) FROM effects WHERE key = ANY(:k)"), {"k": key_list}) < seq:
                if time.monotonic() > deadline:
                    raise RuntimeError("effects missing after 300 s: see .run/bench/logs/bench-*.log")
                await asyncio.sleep(0.05)
                await conn.commit()
            rows = (
                await conn.execute(
                    text(
                        "SELECT extract(epoch FROM pg_xact_commit_timestamp(e.xmin) - o.created_at) * 1000, "
                        "extract(epoch FROM pg_xact_commit_timestamp(e.xmin) - :started) "
                        "FROM effects e JOIN outbox o ON o.event_id = e.event_id WHERE e.key = ANY(:k)"
                    ),
                    {"k": key_list, "started": started_at},
                )
            ).all()
        return max(float(r[1]) for r in rows), [float(r[0]) for r in rows]


def burst(n: int) -> Iterator[int]:
    """n events, 100 a transaction, as fast as they commit."""
    for start in range(0, n, 100):
        yield min(100, n - start)


def steady(rate: int, seconds: float) -> Iterator[int]:
    """`rate` events a second for `seconds`, committed every TICK_SECONDS on a fixed schedule."""
    started = time.perf_counter()
    sent = 0
    for tick in range(1, int(seconds / TICK_SECONDS) + 1):
        due = round(rate * tick * TICK_SECONDS)
        if due > sent:
            yield due - sent
            sent = due
        # the commit above happened between two yields: sleep to the next tick on the schedule
        time.sleep(max(0.0, started + tick * TICK_SECONDS - time.perf_counter()))


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals = {}
    for name, family in processes.items():
        total = 0.0
        for process in family:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        totals[name] = total
    return totals


async def measured(pipeline: Pipeline, ticks: Iterator[int]) -> tuple[float, list[float], dict[str, float]]:
    processes = pipeline.processes()
    before = cpu_seconds(processes)
    elapsed, latencies = await pipeline.run(ticks)
    after = cpu_seconds(processes)
    return elapsed, latencies, {name: after[name] - before[name] for name in processes}


def cpu_line(cpu: dict[str, float], elapsed: float) -> str:
    return ", ".join(f"{name} {seconds / elapsed:.0%}" for name, seconds in cpu.items())


async def main(n: int, seconds: float) -> None:
    stack = devstack.Stack(
        ROOT / ".run" / "bench",
        devstack.Ports(kafka=39092, kafka_controller=39093, postgres=35433, smtp=31025, mail_http=38025),
        fast=os.environ.get("BENCH_FAST_DB") == "1",
    )
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)  # old events on the topic would be consumed again
    await asyncio.to_thread(stack.start)
    pipeline: Pipeline | None = None
    try:
        await ensure_topics(stack.kafka_bootstrap, [TOPIC, f"{TOPIC}.dlq"])
        raw = await raw_kafka(stack.kafka_bootstrap, n)
        stack.ensure_database("bench")
        url = stack.database_url("bench")
        db = await prepared_database(url)
        pipeline = Pipeline(stack, db, url, phases=2 + len(STEADY_RATES))
        with tempfile.TemporaryDirectory() as workdir:
            pipeline.start(Path(workdir))
            await pipeline.run(burst(100))  # warm-up: processes started, consumer group joined
            burst_elapsed, burst_latencies, burst_cpu = await measured(pipeline, burst(n))
            ladder = []
            for rate in STEADY_RATES:
                elapsed, latencies, cpu = await measured(pipeline, steady(rate, seconds))
                ladder.append((rate, latencies, cpu, elapsed))
                if percentile(latencies, 99) >= 100:
                    break
        await db.dispose()
    finally:
        if pipeline is not None:
            pipeline.stop()
        await asyncio.to_thread(stack.stop)

    print(f"events: {n} (burst), steady phases of {seconds:.0f} s; 2 cores: 100% = one core")
    print(f"raw aiokafka produce+consume : {n / raw:9.0f} events/s  ({raw:.2f} s)")
    print(f"outbox -> kafka -> inbox     : {n / burst_elapsed:9.0f} events/s  ({burst_elapsed:.2f} s, burst)")
    print(f"ratio outbox / raw           : {raw / burst_elapsed:9.2f}")
    print(
        f"burst latency (commit -> effect committed): p50 {percentile(burst_latencies, 50):.0f} ms, "
        f"p99 {percentile(burst_latencies, 99):.0f} ms  (queueing behind the burst)"
    )
    print(f"burst CPU: {cpu_line(burst_cpu, burst_elapsed)}")
    for rate, latencies, cpu, elapsed in ladder:
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        print(f"steady {rate:5d} events/s: p50 {p50:4.0f} ms, p99 {p99:4.0f} ms  CPU: {cpu_line(cpu, elapsed)}")
    under = [rate for rate, latencies, _, _ in ladder if percentile(latencies, 99) < 100]
    print(f"highest steady rate with p99 < 100 ms: {max(under) if under else 'none'} events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events in the burst")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each steady phase")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.seconds))
