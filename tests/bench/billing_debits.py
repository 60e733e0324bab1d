"""Debits per second through the enrolment saga's billing step: EnrollmentRequested on Kafka -> the billing
service's consumer debits the wallet (row lock, lots, ledger, charge, outbox) -> TokensDebited on Kafka; beside
`pgbench -N` (8 clients) on the same PostgreSQL in the same run (the baseline; target: >= 20 % of its rate).

    uv run python tests/bench/billing_debits.py [--events N] [--accounts A]

Starts its own Kafka and PostgreSQL (state in .run/bench-billing, ports 36xxx) and the billing service as a
process, and stops them at the end. Time is from the first request produced to the last TokensDebited read back.
"""

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests")]

from wallets import fund  # noqa: E402  (the saga bench takes it from here too)

import devstack  # noqa: E402
from contracts import decode, encode  # noqa: E402
from contracts.events.billing import TokenDebitRejected, TokensDebited  # noqa: E402
from contracts.events.enrollment import EnrollmentRequested  # noqa: E402
from system import System  # noqa: E402

PORTS = devstack.Ports(kafka=36092, kafka_controller=36093, postgres=36433, smtp=36025, mail_http=36080)
SERVICE_PORTS = {"billing": 36102, "gateway": 36000}  # the gateway is not started: billing only names its URL


def pgbench(stack: "devstack.Stack", seconds: int) -> float:
    stack.ensure_database("pgbench")
    common = ["-h", "127.0.0.1", "-p", str(stack.ports.postgres), "-U", "postgres"]
    subprocess.run(
        [devstack.pg_bin("pgbench"), *common, "-i", "-q", "-s", "10", "pgbench"], check=True, capture_output=True
    )
    result = subprocess.run(
        [devstack.pg_bin("pgbench"), *common, "-N", "-c", "8", "-j", "2", "-T", str(seconds), "pgbench"],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]


async def saga(bootstrap: str, accounts: list[uuid.UUID], n: int) -> tuple[float, int, int]:
    """Seconds from the first EnrollmentRequested produced to the n-th outcome read back; debits, rejections."""
    consumer = AIOKafkaConsumer("billing.wallet", bootstrap_servers=bootstrap, auto_offset_reset="latest")
    await consumer.start()
    await consumer.seek_to_end()
    await consumer.getmany(timeout_ms=500)  # positions taken before the first request is sent
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    debited = rejected = 0
    try:
        started = time.perf_counter()
        sends = []
        for i in range(n):
            request = EnrollmentRequested(
                enrollment_id=uuid.uuid4(),
                account_id=accounts[i % len(accounts)],
                session_id=uuid.uuid4(),
                privatisation=False,
            )
            record = encode(request, source="bench")
            sends.append(
                await producer.send("enrollment.enrollment", record.value, key=record.key, headers=record.headers)
            )
        await asyncio.gather(*sends)
        while debited + rejected < n:
            for batch in (await consumer.getmany(timeout_ms=2000)).values():
                for message in batch:
                    event = decode(message.topic, message.key, message.value, message.headers).event
                    debited += isinstance(event, TokensDebited)
                    rejected += isinstance(event, TokenDebitRejected)
        return time.perf_counter() - started, debited, rejected
    finally:
        await producer.stop()
        await consumer.stop()


async def main(n: int, accounts: int) -> None:
    stack = devstack.Stack(ROOT / ".run" / "bench-billing", PORTS)
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    await asyncio.to_thread(stack.start)
    system = System(stack, log_dir=stack.state_dir / "service-logs", ports=dict(SERVICE_PORTS))
    try:
        baseline = await asyncio.to_thread(pgbench, stack, 15)
        await asyncio.to_thread(system.start, ("billing",))
        funded = await fund(stack.database_url("billing"), accounts, n // accounts + 10)
        await saga(stack.kafka_bootstrap, funded, 200)  # warm-up: the consumer group has joined
        elapsed, debited, rejected = await saga(stack.kafka_bootstrap, funded, n)
    finally:
        await asyncio.to_thread(system.stop)
        await asyncio.to_thread(stack.stop)
    rate = n / elapsed
    print(f"requests: {n} over {accounts} accounts; 2 cores")
    print(f"pgbench -N (8 clients, 15 s)          : {baseline:9.0f} transactions/s")
    print(
        f"EnrollmentRequested -> TokensDebited  : {rate:9.0f} debits/s  ({elapsed:.2f} s; {debited} debited, "
        f"{rejected} rejected)"
    )
    print(f"ratio debits / pgbench                : {rate / baseline:9.1%}   (target >= 20 %)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.accounts))
