"""Two notifier replicas (real processes) share a burst of 2,000 participation-link mails to the SMTP catcher; one
is killed (SIGKILL) in the middle and started again. Every recipient gets its mail, under one Message-ID; a mail
sent twice can only be one the killed replica had handed to the server and not yet recorded (notifier.delivery's
window): a delivery whose lease lapsed and was taken again."""

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from notifier.models import deliveries
from servicekit.db import Database
from servicekit.migrations import upgrade
from system import System

BURST = 2000
CONCURRENCY = 4
LEASE_SECONDS = 15  # how soon the killed replica's leased deliveries are taken again (120 s by default)
PORT_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))
VARIABLES = {
    "contact_name": "Claire Martin",
    "expires_at": "3 mars 2027 09:00 CET",
    "link": "https://visiopass.example/verify-email?token=t",
}


def replica(stack, database_url: str, number: int, log_dir: Path) -> System:  # type: ignore[no-untyped-def]
    """A notifier process on the burst's own database (the suite's notifier must not join in); the gateway is not
    started (its URL is in links)."""
    ports = {"notifier": 28305 + 2 * number + PORT_OFFSET, "gateway": 28000 + PORT_OFFSET}
    settings = {
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "NOTIFIER_SMTP_POOL_SIZE": str(CONCURRENCY),
        "NOTIFIER_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    return System(stack, log_dir=log_dir / f"replica-{number}", ports=ports, settings=settings)


async def counts(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        rows = await session.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
        return Counter(dict(rows.tuples().all()))


async def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_replica_killed_mid_burst_and_restarted_leaves_every_recipient_one_mail(  # type: ignore[no-untyped-def]
    stack, fresh_database, tmp_path
) -> None:
    db = Database(fresh_database)
    await upgrade(db, "notifier")
    domain = f"burst-{uuid.uuid4().hex[:8]}.example"
    recipients = [f"person-{number}@{domain}" for number in range(BURST)]
    replicas = [replica(stack, fresh_database, number, tmp_path) for number in (0, 1)]
    try:
        for each in replicas:
            await asyncio.to_thread(each.start, ("notifier",))
        event_id = uuid.uuid4()
        async with db.transaction() as session:
            await session.execute(
                insert(deliveries),
                [
                    {
                        "id": uuid.uuid4(),
                        "event_id": event_id,
                        "template": "verification_link",
                        "language": "fr",
                        "recipient": recipient,
                        "context": VARIABLES,
                        "priority": 1,
                    }
                    for recipient in recipients
                ],
            )

        async def some_sent() -> bool:
            return (await counts(db))["sent"] >= BURST // 4

        await wait_for(some_sent, 120, "a quarter of the burst sent")
        victim = replicas[1]
        victim.processes["notifier"].kill()  # SIGKILL: no clean stop, its leased deliveries stay leased
        victim.processes.pop("notifier").wait()
        assert (await counts(db))["pending"] > 0, "the burst was over before the kill: nothing was tested"
        await asyncio.to_thread(victim.start, ("notifier",))

        async def all_sent() -> bool:
            return (await counts(db))["sent"] == BURST

        await wait_for(all_sent, 300, "every delivery recorded sent")
        async with db.transaction() as session:
            retaken = await session.scalar(select(func.count()).where(deliveries.c.attempts > 1))
    finally:
        for each in replicas:
            await asyncio.to_thread(each.stop)
        await db.dispose()
    async with httpx.AsyncClient(base_url=stack.mail_api, timeout=120) as catcher:
        mails = [mail for mail in (await catcher.get("/api/messages")).json() if mail["to"][0].endswith(domain)]
    per_recipient = Counter(mail["to"][0] for mail in mails)
    message_ids = {mail["to"][0]: set() for mail in mails}
    for mail in mails:
        message_ids[mail["to"][0]].add(mail["message_id"])
    assert set(per_recipient) == set(recipients), "every recipient got a mail"
    assert all(len(ids) == 1 for ids in message_ids.values()), "one Message-ID per recipient, whatever was resent"
    copies = sum(per_recipient.values()) - BURST
    # a mail goes twice only when the killed replica had sent it without recording it yet: its lease lapsed and
    # another attempt took the row again; never two live replicas sending one delivery
    assert copies <= retaken, f"{copies} mails sent twice, but only {retaken} deliveries were taken again"
