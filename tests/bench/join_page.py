"""The participation link's page, `GET /join/<token>` through the gateway (enrollment resolves the token; catalogue
gives the session's waiting-room text and dial-in), with wrk at 10 and 50 connections (as fast as it answers: its
capacity, latency under saturation), and at a steady rate offered (`--rate`, a class opening its links together:
latency below saturation); beside the gateway's trivial `GET /health/live` in the same run (the baseline). Target:
p99 < 50 ms.

    uv run python tests/bench/join_page.py [--seconds 5] [--connections 10 50] [--rate 100]

Starts its own Kafka, PostgreSQL, accounts, catalogue, enrollment and gateway (state in .run/bench-join, ports
19xxx), publishes a session through catalogue, gives an institution a confirmed enrolment and its link in
enrollment's database (as its confirmation would), then stops them. Needs wrk (installed with apt-get when missing
and run as root).
"""

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests"), str(ROOT / "tests" / "bench")]

from authenticated_reads import ensure_wrk, wrk  # noqa: E402

import devstack  # noqa: E402
from enrollment import links  # noqa: E402
from enrollment.models import enrolments, participation_links, sessions  # noqa: E402
from servicekit.db import Database  # noqa: E402
from system import System  # noqa: E402

PORTS = devstack.Ports(kafka=19092, kafka_controller=19093, postgres=19433, smtp=19025, mail_http=19080)
SERVICE_PORTS = {"accounts": 19101, "catalogue": 19103, "enrollment": 19104, "gateway": 19000}


async def published_session(system: System) -> uuid.UUID:
    headers = {"X-Internal-Token": system.internal_token, "X-Actor-Id": str(uuid.uuid4())}
    starts = (datetime.now(UTC) + timedelta(days=3)).astimezone(ZoneInfo("Europe/Paris"))
    async with httpx.AsyncClient(base_url=system.url("catalogue"), headers=headers, timeout=30) as catalogue:
        theme = await catalogue.post("/internal/back-office/themes", json={"title": "Pronote"})
        made = await catalogue.post(
            "/internal/back-office/sessions",
            json={
                "theme_id": theme.json()["id"],
                "title": "Prise en main de Pronote",
                "local_start": starts.strftime("%Y-%m-%dT%H:%M"),
                "waiting_message": "Bienvenue : la session commence bientôt.",
                "agenda": "1. Présentation\n2. Questions",
            },
        )
        made.raise_for_status()
        session_id = uuid.UUID(made.json()["id"])
        (await catalogue.post(f"/internal/back-office/sessions/{session_id}/publish")).raise_for_status()
    return session_id


async def enrolled_link(url: str, session_id: uuid.UUID, key: str) -> str:
    """A confirmed enrolment and its link, once enrollment's copy of the session has arrived; the link's token."""
    db = Database(url)
    now = datetime.now(UTC)
    try:
        for _ in range(300):
            async with db.transaction() as session:
                if await session.scalar(select(sessions.c.id).where(sessions.c.id == session_id)):
                    break
            await asyncio.sleep(0.1)
        enrollment_id, link_id = uuid.uuid4(), uuid.uuid4()
        token = links.link_token(key.encode(), link_id)
        async with db.transaction() as session:
            await session.execute(
                insert(enrolments).values(
                    id=enrollment_id,
                    account_id=uuid.uuid4(),
                    session_id=session_id,
                    status="confirmed",
                    privatisation=False,
                    tokens=1,
                    expected_participants=30,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.execute(
                insert(participation_links).values(
                    id=link_id, enrollment_id=enrollment_id, token_hash=links.token_hash(token), created_at=now
                )
            )
    finally:
        await db.dispose()
    return token


async def paced(url: str, rate: int, seconds: int) -> list[float]:
    """Latencies (ms) of GET `url` sent at `rate` per second for `seconds`, whatever the answers' pace."""
    latencies: list[float] = []

    async def one(client: httpx.AsyncClient) -> None:
        sent = time.perf_counter()
        answer = await client.get(url)
        assert answer.status_code == 200, answer.status_code
        latencies.append((time.perf_counter() - sent) * 1000)

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:
        tasks = []
        started = time.perf_counter()
        for i in range(rate * seconds):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(client)))
        await asyncio.gather(*tasks)
    return sorted(latencies)


def main(seconds: int, connections: list[int], rate: int) -> None:
    ensure_wrk()
    stack = devstack.Stack(ROOT / ".run" / "bench-join", PORTS)
    stack.install()
    shutil.rmtree(stack.state_dir, ignore_errors=True)
    stack.start()
    # wrk is one client: the gateway's per-client limits are raised, not switched off (their cost is measured)
    limits = {"GATEWAY_RATE_LIMIT_READ": "100000000/60", "GATEWAY_RATE_LIMIT_JOIN": "100000000/60"}
    system = System(stack, log_dir=stack.state_dir / "service-logs", ports=dict(SERVICE_PORTS), settings=limits)
    try:
        system.start(("accounts", "catalogue", "enrollment", "gateway"))
        session_id = asyncio.run(published_session(system))
        token = asyncio.run(enrolled_link(stack.database_url("enrollment"), session_id, system.link_key))
        gateway = system.url("gateway")
        page = httpx.get(f"{gateway}/join/{token}", timeout=10)
        assert page.status_code == 200 and 'data-state="waiting"' in page.text, page.status_code
        runs = [
            ("gateway GET /health/live (baseline)", f"{gateway}/health/live"),
            ("gateway GET /join/<token> (waiting room)", f"{gateway}/join/{token}"),
        ]
        wrk(runs[1][1], 10, 1, {})  # warm-up
        for clients in connections:
            baseline = None
            for label, url in runs:
                result = wrk(url, clients, seconds, {})
                baseline = baseline or result["rate"]
                print(
                    f"{clients:3} conn  {label:42} {result['rate']:7.0f} req/s  p50 {result['p50']:7.1f} ms  "
                    f"p99 {result['p99']:7.1f} ms  {result['rate'] / baseline:6.1%} of baseline",
                    flush=True,
                )
                time.sleep(1)
        latencies = asyncio.run(paced(runs[1][1], rate, 10))
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(f"{rate} req/s offered for 10 s   GET /join/<token>: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms", flush=True)
    finally:
        system.stop()
        stack.stop()
    print(f"wrk -t2, {seconds} s per run; 2 cores; target p99 < 50 ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rate", type=int, default=100)
    arguments = parser.parse_args()
    main(arguments.seconds, arguments.connections, arguments.rate)
