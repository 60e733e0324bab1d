"""Scheduler lag: 200 sessions whose H-1 reminder falls due within the same minute, two scheduler replicas
(catalogue.scheduler.run_forever with the real clock, its own pool each) on one PostgreSQL. The lag of each
reminder is its emitted_at minus its due time (what catalogue_scheduler_lag_seconds observes), and, stricter, its
transaction's commit time (PostgreSQL's commit timestamp) minus its due time: p50, p95, p99 (target: p99 < 2 s).
Baseline in the same run, through the same driver: a one-row UPDATE transaction and a bare SELECT 1.

    uv run python tests/bench/scheduler_lag.py [--sessions N] [--every SECONDS]

Starts its own PostgreSQL (state in .run/bench-scheduler, port 36933) and stops it at the end. The sessions are
published about an hour before they start, so their J-2 links are due at once: a pass sends them before the
replicas start, and only the reminders (due 15 to 75 s later) are measured.
"""

import argparse
import asyncio
import math
import random
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local")]

import devstack  # noqa: E402
from catalogue import scheduler  # noqa: E402
from catalogue.models import sessions, themes  # noqa: E402
from servicekit.db import Database  # noqa: E402
from servicekit.migrations import upgrade  # noqa: E402
from servicekit.outbox import Outbox  # noqa: E402

PORTS = devstack.Ports(kafka=36992, kafka_controller=36993, postgres=36933, smtp=36925, mail_http=36980)
OUTBOX = Outbox("catalogue")
LEAD_SECONDS = 15  # from publication to the first reminder due: the J-2 pass runs in between
WINDOW_SECONDS = 60  # the reminders fall due within this minute


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def figures(values: list[float]) -> str:
    return "  ".join(f"p{round(q * 100)} {percentile(values, q) * 1000:8.1f} ms" for q in (0.5, 0.95, 0.99))


async def baseline(db: Database, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds of a bare SELECT 1 and of a one-row UPDATE transaction, each `rounds` times."""
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)"))
        await session.execute(text("INSERT INTO bench_counter VALUES (1, 0)"))
    selects, updates = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))
        selects.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with db.transaction() as session:
            await session.execute(text("UPDATE bench_counter SET n = n + 1 WHERE id = 1"))
        updates.append(time.perf_counter() - started)
    return selects, updates


async def publish(db: Database, count: int) -> datetime:
    """`count` published sessions starting an hour after a random moment of the coming window; the window's end."""
    now = datetime.now(UTC)
    window = now + timedelta(seconds=LEAD_SECONDS)
    theme_id = uuid.uuid4()
    async with db.transaction() as session:
        await session.execute(
            insert(themes).values(
                id=theme_id,
                title="Bench",
                description="",
                audience="",
                prerequisites="",
                tags=[],
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
        for i in range(count):
            starts_at = window + timedelta(hours=1, seconds=random.uniform(0, WINDOW_SECONDS))
            session_id = uuid.uuid4()
            await session.execute(
                insert(sessions).values(
                    id=session_id,
                    theme_id=theme_id,
                    detached=False,
                    title=f"Bench {i}",
                    description="",
                    animator="Bench",
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(hours=1),
                    duration_minutes=60,
                    timezone="Europe/Paris",
                    price_tokens=1,
                    access="open",
                    waiting_message="",
                    agenda="",
                    provider="bbb",
                    status="published",
                    enrolled_count=0,
                    published_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            await scheduler.plan_session(session, session_id, starts_at, starts_at + timedelta(hours=1), now)
    async with db.transaction() as session:  # the J-2 links, due at once
        await scheduler.emit_due(session, OUTBOX, datetime.now(UTC))
    return window + timedelta(seconds=WINDOW_SECONDS)


async def reminders(db: Database) -> list[tuple[float, float | None]]:
    """(emitted_at - due_at, commit time - due_at) of each H-1 row, in seconds; None while not emitted."""
    async with db.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT extract(epoch FROM emitted_at - due_at), "
                "extract(epoch FROM pg_xact_commit_timestamp(xmin) - due_at) "
                "FROM schedule WHERE \"offset\" = 'H-1'"
            )
        )
        return [
            (float(emitted), float(committed)) if emitted is not None else (math.inf, None)
            for emitted, committed in rows
        ]


async def main(count: int, every_seconds: float) -> None:
    stack = devstack.Stack(ROOT / ".run" / "bench-scheduler", PORTS)
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    await asyncio.to_thread(stack.start_postgres)
    try:
        await asyncio.to_thread(stack.ensure_database, "catalogue")
        url = stack.database_url("catalogue")
        db, other = Database(url), Database(url)
        try:
            await upgrade(db, "catalogue")
            selects, updates = await baseline(db, 1000)
            window_end = await publish(db, count)
            replicas = [
                asyncio.create_task(scheduler.run_forever(replica, OUTBOX, every_seconds)) for replica in (db, other)
            ]
            while datetime.now(UTC) < window_end + timedelta(seconds=30):
                if all(emitted != math.inf for emitted, _ in await reminders(db)):
                    break
                await asyncio.sleep(1)
            for replica in replicas:
                replica.cancel()
            await asyncio.gather(*replicas, return_exceptions=True)
            lags = await reminders(db)
            async with db.transaction() as session:
                sent = await session.scalar(
                    text("SELECT count(*) FROM outbox WHERE convert_from(value, 'UTF8')::jsonb->>'offset' = 'H-1'")
                )
        finally:
            await db.dispose()
            await other.dispose()
    finally:
        await asyncio.to_thread(stack.stop_postgres)

    emitted = [lag for lag, _ in lags if lag != math.inf]
    committed = [lag for _, lag in lags if lag is not None]
    print(f"sessions: {count}, H-1 reminders due within {WINDOW_SECONDS} s; 2 replicas, every_seconds {every_seconds}")
    print(f"reminders emitted: {len(emitted)} of {count}; SessionStarting H-1 events in the outbox: {sent}")
    print(f"baseline SELECT 1                    : {figures(selects)}")
    print(f"baseline one-row UPDATE transaction  : {figures(updates)}")
    print(f"lag emitted_at - due_at              : {figures(emitted)}")
    print(f"lag commit - due_at                  : {figures(committed)}   (target p99 < 2000 ms)")
    print(f"ratio lag p99 (commit) / UPDATE p99  : {percentile(committed, 0.99) / percentile(updates, 0.99):8.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--every", type=float, default=1.0, help="the scheduler's every_seconds")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sessions, arguments.every))
