"""A burst of participation-link mails through the notifier: N deliveries planned at once (bulk, as a J-2 fan-out
plans them), sent by one and then by two notifier replicas to the local SMTP catcher; beside a raw aiosmtplib loop
sending the same number of mails to the same catcher over as many persistent connections as one replica uses, in
the same run (the baseline; goal: at least half its rate).

    uv run python tests/bench/notifier_burst.py [--mails 10000] [--concurrency 4]

Starts its own Kafka, PostgreSQL and catcher (state in .run/bench-notifier, ports 38xxx) and the notifier replicas
as processes, then stops them. A replica's rate is from the plan's commit to the last delivery recorded sent.
"""

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local")]

import devstack  # noqa: E402
from notifier.models import deliveries  # noqa: E402
from servicekit.db import Database  # noqa: E402
from servicekit.migrations import upgrade  # noqa: E402
from system import System  # noqa: E402

PORTS = devstack.Ports(kafka=38092, kafka_controller=38093, postgres=38433, smtp=38025, mail_http=38080)
VARIABLES = {
    "contact_name": "Claire Martin",
    "expires_at": "3 mars 2027 09:00 CET",
    "link": "https://visiopass.example/verify-email?token=a-token-of-the-bench",
}


async def raw_loop(port: int, count: int, connections: int) -> float:
    """Mails per second sent with bare aiosmtplib over `connections` persistent connections."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)

    async def sender() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            while not queue.empty():
                number = queue.get_nowait()
                message = EmailMessage()
                message["From"] = "Visiopass <no-reply@visiopass.example>"
                message["To"] = f"raw-{number}@bench.example"
                message["Subject"] = "Votre lien de participation"
                message.set_content(f"Bonjour,\nvoici votre lien : {VARIABLES['link']}\n")
                await smtp.send_message(message)

    started = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(connections)))
    return count / (time.monotonic() - started)


async def plan(db: Database, count: int, label: str) -> None:
    event_id = uuid.uuid4()
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "template": "verification_link",
            "language": "fr",
            "recipient": f"{label}-{number}@bench.example",
            "context": VARIABLES,
            "priority": 1,
        }
        for number in range(count)
    ]
    async with db.transaction() as session:
        for first in range(0, count, 2000):
            await session.execute(insert(deliveries), rows[first : first + 2000])


async def wait_sent(db: Database, count: int) -> None:
    while True:
        async with db.transaction() as session:
            pending = await session.scalar(select(func.count()).where(deliveries.c.status == "pending"))
        if pending == 0:
            return
        await asyncio.sleep(0.05)


def replicas(stack: "devstack.Stack", count: int, concurrency: int) -> list[System]:
    settings = {"NOTIFIER_DELIVERY_CONCURRENCY": str(concurrency), "NOTIFIER_SMTP_POOL_SIZE": str(concurrency)}
    return [
        System(
            stack,
            log_dir=stack.state_dir / f"notifier-{number}",
            ports={"notifier": 38105 + number, "gateway": 38000},  # the gateway is not started: its URL is in links
            settings=settings,
        )
        for number in range(count)
    ]


async def burst(stack: "devstack.Stack", db: Database, count: int, concurrency: int, replica_count: int) -> float:
    running = replicas(stack, replica_count, concurrency)
    for system in running:
        await asyncio.to_thread(system.start, ("notifier",))
    try:
        label = f"burst{replica_count}"
        started = time.monotonic()
        await plan(db, count, label)
        await wait_sent(db, count)
        elapsed = time.monotonic() - started
    finally:
        for system in running:
            await asyncio.to_thread(system.stop)
    return count / elapsed


async def main(count: int, concurrency: int) -> None:
    stack = devstack.Stack(ROOT / ".run" / "bench-notifier", PORTS)
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    await asyncio.to_thread(stack.start)
    db = Database(stack.database_url("notifier"))
    try:
        stack.ensure_database("notifier")
        await upgrade(db, "notifier")
        raw = await raw_loop(stack.ports.smtp, count, concurrency)
        one = await burst(stack, db, count, concurrency, 1)
        two = await burst(stack, db, count, concurrency, 2)
        async with db.transaction() as session:
            sent = await session.scalar(select(func.count()).where(deliveries.c.status == "sent"))
    finally:
        await db.dispose()
        await asyncio.to_thread(stack.stop)
    print(f"mails per run: {count}; {concurrency} SMTP connections per sender; 2 cores")
    print(f"raw aiosmtplib loop           : {raw:7.0f} mails/s  ({count / raw:5.1f} s to the last)")
    print(f"notifier, one replica         : {one:7.0f} mails/s  ({count / one:5.1f} s)  {one / raw:6.1%} of raw")
    print(f"notifier, two replicas        : {two:7.0f} mails/s  ({count / two:5.1f} s)  {two / raw:6.1%} of raw")
    print(f"deliveries recorded sent      : {sent} of {2 * count}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.mails, arguments.concurrency))
