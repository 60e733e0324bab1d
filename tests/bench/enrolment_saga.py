"""Enrolments confirmed per second through the whole saga, and the time to confirmation, beside `pgbench -N`
(8 clients) on the same PostgreSQL in the same run (the baseline; target: confirmed enrolments >= 10 % of its rate).

    uv run python tests/bench/enrolment_saga.py [--enrolments N] [--sessions S] [--rate R] [--seconds T]

What is timed: `POST /internal/enrolments` to the enrollment service (202, pending, EnrollmentRequested in the
same transaction) -> outbox relay -> Kafka -> billing debits the wallet -> TokensDebited -> enrollment confirms ->
Enrolled read back from Kafka. Two runs:
- throughput: N requests by 32 concurrent clients spread over S sessions; confirmed enrolments per second from
  the first request to the last Enrolled, with p50/p99 time to confirmation;
- latency: R requests per second offered at a steady pace for T seconds, all into ONE session (every decision
  locks that session's row); p50/p99/max time from sending each request to its Enrolled.

Starts its own Kafka and PostgreSQL (state in .run/bench-enrolment, ports 37xxx), billing and enrollment as
processes (sessions arrive as SessionScheduled published here; wallets are funded in billing's database), and stops
them at the end.
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(Path(__file__).resolve().parent)]

from billing_debits import fund, pgbench  # noqa: E402

import devstack  # noqa: E402
from contracts import decode, encode  # noqa: E402
from contracts.events.catalogue import SessionScheduled  # noqa: E402
from contracts.events.enrollment import Enrolled, EnrollmentRejected  # noqa: E402
from servicekit.db import Database  # noqa: E402
from servicekit.http import INTERNAL_TOKEN_HEADER  # noqa: E402
from system import System  # noqa: E402

PORTS = devstack.Ports(kafka=37092, kafka_controller=37093, postgres=37433, smtp=37025, mail_http=37080)
SERVICE_PORTS = {"billing": 37102, "enrollment": 37104, "gateway": 37000}  # the gateway is named, not started


class Outcomes:
    """Reads enrollment.enrollment and stamps each enrolment's outcome as it arrives."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer("enrollment.enrollment", bootstrap_servers=bootstrap)
        self.confirmed: dict[uuid.UUID, float] = {}
        self.rejected: dict[uuid.UUID, str] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        await self.consumer.getmany(timeout_ms=500)  # positions taken before the first request
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for batch in (await self.consumer.getmany(timeout_ms=200)).values():
                now = time.perf_counter()
                for message in batch:
                    event = decode(message.topic, message.key, message.value, message.headers).event
                    if isinstance(event, Enrolled):
                        self.confirmed[event.enrollment_id] = now
                    elif isinstance(event, EnrollmentRejected):
                        self.rejected[event.enrollment_id] = event.reason

    async def wait_for(self, ids: set[uuid.UUID], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while not ids <= (self.confirmed.keys() | self.rejected.keys()):
            if time.perf_counter() > deadline:
                missing = len(ids - self.confirmed.keys() - self.rejected.keys())
                raise TimeoutError(f"{missing} enrolments without an outcome after {timeout} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


async def schedule_sessions(bootstrap: str, count: int) -> list[uuid.UUID]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    ids = [uuid.uuid4() for _ in range(count)]
    try:
        for session_id in ids:
            event = SessionScheduled(
                session_id=session_id,
                theme_id=uuid.uuid4(),
                title="Bench session",
                starts_at=datetime.now(UTC) + timedelta(days=30),
                duration_minutes=60,
                capacity=None,
                provider="jitsi",
            )
            record = encode(event, source="bench")
            await producer.send_and_wait("catalogue.session", record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()
    return ids


ANSWER_TIMES: list[float] = []  # from each request to its 202


async def ask(client: httpx.AsyncClient, account_id: uuid.UUID, session_id: uuid.UUID) -> tuple[uuid.UUID, float]:
    sent = time.perf_counter()
    response = await client.post(
        "/internal/enrolments",
        json={"account_id": str(account_id), "session_id": str(session_id), "expected_participants": 1},
    )
    if response.status_code != 202:
        raise RuntimeError(f"{response.status_code} {response.text}")
    ANSWER_TIMES.append(time.perf_counter() - sent)
    return uuid.UUID(response.json()["id"]), sent


async def wait_for_copies(url: str, count: int) -> None:
    """Until enrollment has copied every session (SessionScheduled comes on several partitions, in any order)."""
    db = Database(url)
    try:
        for _ in range(600):
            async with db.transaction() as session:
                if await session.scalar(text("SELECT count(*) FROM sessions")) >= count:
                    return
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()
    raise TimeoutError("enrollment never copied the sessions")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] if len(values) > 1 else values[0]


async def throughput(
    client: httpx.AsyncClient, outcomes: Outcomes, accounts: list[uuid.UUID], sessions: list[uuid.UUID], n: int
) -> tuple[float, list[float]]:
    queue: asyncio.Queue[tuple[uuid.UUID, uuid.UUID]] = asyncio.Queue()
    for i in range(n):  # round the sessions, each account once per session: requests in flight are spread
        queue.put_nowait((accounts[i // len(sessions)], sessions[i % len(sessions)]))
    sent: dict[uuid.UUID, float] = {}

    async def worker() -> None:
        while not queue.empty():
            account_id, session_id = queue.get_nowait()
            enrollment_id, at = await ask(client, account_id, session_id)
            sent[enrollment_id] = at

    print(f"throughput run: {n} requests", flush=True)
    ANSWER_TIMES.clear()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(32)))
    await outcomes.wait_for(set(sent), timeout=120)
    elapsed = max(outcomes.confirmed.get(i, started) for i in sent) - started
    return elapsed, [outcomes.confirmed[i] - at for i, at in sent.items() if i in outcomes.confirmed]


async def paced(
    client: httpx.AsyncClient,
    outcomes: Outcomes,
    accounts: list[uuid.UUID],
    session_id: uuid.UUID,
    rate: int,
    seconds: int,
) -> tuple[list[float], int]:
    """Times to confirmation of requests sent at `rate` per second, whatever the answers' pace; and how many
    requests failed (beyond the service's capacity, connections queue up and some are dropped)."""
    sent: dict[uuid.UUID, float] = {}
    failed = 0

    async def one(account_id: uuid.UUID) -> None:
        nonlocal failed
        try:
            enrollment_id, at = await ask(client, account_id, session_id)
        except httpx.HTTPError:
            failed += 1
            return
        sent[enrollment_id] = at

    tasks = []
    started = time.perf_counter()
    for i in range(rate * seconds):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(accounts[i])))
    await asyncio.gather(*tasks)
    await outcomes.wait_for(set(sent), timeout=180)
    return [outcomes.confirmed[i] - at for i, at in sent.items() if i in outcomes.confirmed], failed


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {percentile(latencies, 0.5) * 1000:6.0f} ms, p99 {percentile(latencies, 0.99) * 1000:6.0f} ms, "
        f"max {max(latencies) * 1000:6.0f} ms"
    )


async def main(n: int, session_count: int, rate: int, seconds: int) -> None:
    stack = devstack.Stack(ROOT / ".run" / "bench-enrolment", PORTS)
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    await asyncio.to_thread(stack.start)
    system = System(stack, log_dir=stack.state_dir / "service-logs", ports=dict(SERVICE_PORTS))
    outcomes = Outcomes(stack.kafka_bootstrap)
    try:
        baseline = await asyncio.to_thread(pgbench, stack, 15)
        await asyncio.to_thread(system.start, ("billing", "enrollment"))
        per_session = -(-n // session_count)
        paced_count = rate * seconds
        accounts = await fund(stack.database_url("billing"), max(per_session, paced_count), session_count + 3)
        sessions = await schedule_sessions(stack.kafka_bootstrap, session_count + 2)
        await wait_for_copies(stack.database_url("enrollment"), len(sessions))
        await outcomes.start()
        headers = {INTERNAL_TOKEN_HEADER: system.internal_token}
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=system.url("enrollment"), headers=headers, limits=limits, timeout=60
        ) as client:
            warm = [(await ask(client, account, sessions[-2]))[0] for account in accounts[:50]]
            await outcomes.wait_for(set(warm), timeout=60)
            elapsed, latencies = await throughput(client, outcomes, accounts[:per_session], sessions[:session_count], n)
            confirmed = len(latencies)
            print(f"2 cores; billing and enrollment one process each; {n} enrolments over {session_count} sessions")
            print(f"pgbench -N (8 clients, 15 s)                 : {baseline:8.0f} transactions/s")
            print(
                f"request -> Enrolled, 32 clients              : {confirmed / elapsed:8.0f} confirmed/s "
                f"({elapsed:.2f} s)"
            )
            print(f"  time to confirmation                        : {summary(latencies)}")
            print(f"  time to the 202 answer                      : {summary(ANSWER_TIMES)}")
            print(
                f"ratio confirmed / pgbench                     : {confirmed / elapsed / baseline:8.1%}   "
                "(target >= 10 %)"
            )
            ANSWER_TIMES.clear()
            one_session, failed = await paced(client, outcomes, accounts, sessions[-1], rate, seconds)
            print(
                f"{rate} requests/s offered for {seconds} s into one session: {len(one_session)} confirmed, "
                f"{failed} requests failed"
            )
            print(f"  time to confirmation                        : {summary(one_session)}   (target p99 < 1 s)")
            print(f"  time to the 202 answer                      : {summary(ANSWER_TIMES)}")
    finally:
        await outcomes.stop()
        await asyncio.to_thread(system.stop)
        await asyncio.to_thread(stack.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enrolments", type=int, default=4000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    arguments = parser.parse_args()
    # uvloop: the load generator shares the 2 cores with what it measures; the lighter its loop, the less it takes
    uvloop.run(main(arguments.enrolments, arguments.sessions, arguments.rate, arguments.seconds))
