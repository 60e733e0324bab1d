"""The planning query with 20,000 sessions in the catalogue's database: `GET /internal/planning` (a month, a month
and a theme, free text, places left) on the catalogue service, and the public `GET /api/v1/planning` through the
gateway, at 50 concurrent connections with wrk; beside the catalogue's trivial `GET /health/live` (the baseline)
in the same run. Target: p99 < 50 ms for the planning query at 50 concurrent clients.

    uv run python tests/bench/planning_query.py [--sessions 20000] [--seconds 5] [--connections 50] [--cache 2]

`--cache` is how long the catalogue and the gateway reuse a planning answer (their *_PLANNING_CACHE_SECONDS; 0
measures every request reaching the database).

Starts its own Kafka, PostgreSQL, catalogue, accounts and gateway (state in .run/bench-planning, ports 37xxx),
fills the catalogue's database directly (themes and published sessions over two years), then stops them.
Needs wrk (installed with apt-get when missing and run as root).
"""

import argparse
import asyncio
import random
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests"), str(ROOT / "tests" / "bench")]

from authenticated_reads import ensure_wrk, wrk  # noqa: E402

import devstack  # noqa: E402
from catalogue.models import sessions, themes  # noqa: E402
from servicekit.db import Database  # noqa: E402
from system import System  # noqa: E402

PORTS = devstack.Ports(kafka=37092, kafka_controller=37093, postgres=37433, smtp=37025, mail_http=37080)
SERVICE_PORTS = {"accounts": 37101, "catalogue": 37103, "gateway": 37000}
WORDS = "pronote emploi du temps vie scolaire notes bulletins cahier de textes absences parents élèves".split()


async def fill(url: str, count: int) -> tuple[uuid.UUID, str]:
    """`count` published sessions over the next two years, in 20 themes; a theme id and a busy month."""
    db = Database(url)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    random.seed(11)
    theme_ids = [uuid.uuid4() for _ in range(20)]
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(themes),
                [
                    {
                        "id": theme_id,
                        "title": f"Thème {number}",
                        "description": "",
                        "audience": random.choice(["Lycées", "Collèges", "Écoles", "Entreprises"]),
                        "prerequisites": "",
                        "tags": [],
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for number, theme_id in enumerate(theme_ids)
                ],
            )
        for first in range(0, count, 2000):
            rows = []
            for _ in range(first, min(first + 2000, count)):
                starts = now + timedelta(hours=random.randrange(24, 24 * 730))
                capacity = random.choice([None, 10, 20, 50])
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "theme_id": random.choice(theme_ids),
                        "detached": False,
                        "title": " ".join(random.sample(WORDS, 4)).capitalize(),
                        "description": " ".join(random.choices(WORDS, k=40)),
                        "animator": random.choice(["Claire Martin", "Paul Durand", "Léa Petit", "Marc Roux"]),
                        "starts_at": starts,
                        "ends_at": starts + timedelta(minutes=90),
                        "duration_minutes": 90,
                        "timezone": "Europe/Paris",
                        "capacity": capacity,
                        "price_tokens": 1,
                        "access": "open",
                        "waiting_message": "",
                        "agenda": "",
                        "provider": "jitsi",
                        "status": "published",
                        "enrolled_count": random.randrange(0, capacity + 1) if capacity else random.randrange(0, 80),
                        "sequence": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            async with db.transaction() as session:
                await session.execute(insert(sessions), rows)
        async with db.transaction() as session:
            await session.execute(sessions.select().limit(1))  # the pool is warm; ANALYZE below
        async with db.engine.connect() as connection:
            await connection.exec_driver_sql("COMMIT")
            await connection.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()
    return theme_ids[0], (now + timedelta(days=200)).strftime("%Y-%m")


def main(count: int, seconds: int, connections: list[int], cache_seconds: float) -> None:
    ensure_wrk()
    stack = devstack.Stack(ROOT / ".run" / "bench-planning", PORTS)
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    stack.start()
    system = System(
        stack,
        log_dir=stack.state_dir / "service-logs",
        ports=dict(SERVICE_PORTS),
        settings={
            "GATEWAY_RATE_LIMIT_READ": "100000000/60",  # wrk is one client; its reads are still counted
            "CATALOGUE_PLANNING_CACHE_SECONDS": str(cache_seconds),
            "GATEWAY_PLANNING_CACHE_SECONDS": str(cache_seconds),
        },
    )
    try:
        system.start(("accounts", "catalogue", "gateway"))
        theme_id, month = asyncio.run(fill(stack.database_url("catalogue"), count))
        catalogue, gateway = system.url("catalogue"), system.url("gateway")
        internal = {"X-Internal-Token": system.internal_token}
        runs = [
            ("catalogue GET /health/live (baseline)", f"{catalogue}/health/live", internal),
            ("catalogue planning: a month", f"{catalogue}/internal/planning?month={month}", internal),
            (
                "catalogue planning: month + theme",
                f"{catalogue}/internal/planning?month={month}&theme_id={theme_id}",
                internal,
            ),
            ("catalogue planning: free text", f"{catalogue}/internal/planning?q=bulletins%20parents", internal),
            ("catalogue planning: places left", f"{catalogue}/internal/planning?available=true", internal),
            ("gateway GET /api/v1/planning (month)", f"{gateway}/api/v1/planning?month={month}", {}),
        ]
        wrk(runs[1][1], 10, 1, internal)  # warm-up
        for clients in connections:
            baseline = None
            for label, url, headers in runs:
                result = wrk(url, clients, seconds, headers)
                baseline = baseline or result["rate"]
                print(
                    f"{clients:3} conn  {label:40} {result['rate']:7.0f} req/s  p50 {result['p50']:7.1f} ms  "
                    f"p99 {result['p99']:7.1f} ms  {result['rate'] / baseline:6.1%} of baseline"
                )
                time.sleep(1)
    finally:
        system.stop()
        stack.stop()
    print(
        f"{count} published sessions; answers reused for {cache_seconds} s; wrk -t2, {seconds} s per run; 2 cores; "
        "target p99 < 50 ms at 50 clients"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, nargs="+", default=[50])
    parser.add_argument("--cache", type=float, default=2.0)
    arguments = parser.parse_args()
    main(arguments.sessions, arguments.seconds, arguments.connections, arguments.cache)
