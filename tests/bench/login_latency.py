"""Login latency at 50 concurrent clients through the accounts service (argon2id included), beside a
trivial endpoint of the same process measured in the same run (the baseline).

    uv run python tests/bench/login_latency.py [--clients 50] [--logins 400]

Starts its own Kafka, PostgreSQL and the accounts service (state in .run/bench-login), then stops them.
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests")]

import devstack  # noqa: E402
from identifiers import new_uai  # noqa: E402
from system import System  # noqa: E402

PASSWORD = "violet tramway under nineteen lanterns"


async def measure(client: httpx.AsyncClient, clients: int, total: int, request) -> list[float]:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for i in remaining:
            started = time.perf_counter()
            response = await request(client, i)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 201), response.text

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def summary(label: str, latencies: list[float], elapsed: float) -> str:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"{label:28} p50 {q[49]:7.1f} ms  p99 {q[98]:7.1f} ms  {len(latencies) / elapsed:7.0f} req/s"


async def main(clients: int, total: int) -> None:
    state = ROOT / ".run" / "bench-login"
    shutil.rmtree(state, ignore_errors=True)
    stack = devstack.Stack(
        state, devstack.Ports(kafka=39392, kafka_controller=39393, postgres=35733, smtp=31325, mail_http=38325)
    )
    system = System(stack, log_dir=state / "service-logs", ports={"accounts": 38201})
    await asyncio.to_thread(stack.start)
    try:
        await asyncio.to_thread(system.start, ("accounts",))
        headers = {"X-Internal-Token": system.internal_token}
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=system.url("accounts"), headers=headers, limits=limits) as client:
            emails = [f"bench-{i}@lycee-bench.fr" for i in range(clients)]
            for i, email in enumerate(emails):
                form = {
                    "institution_name": "Lycée Bench",
                    "institution_kind": "school",
                    "institution_identifier": new_uai(),
                    "contact_name": "Bench",
                    "email": email,
                    "password": PASSWORD,
                    "source": f"10.2.{i}.1",  # sign-ups are limited per source
                }
                assert (await client.post("/internal/accounts/", json=form)).status_code == 201

            async def health(c, i):  # type: ignore[no-untyped-def]
                return await c.get("/health/live")

            async def login(c, i):  # type: ignore[no-untyped-def]
                body = {"email": emails[i % clients], "password": PASSWORD, "source": f"10.1.{i % 250}.1"}
                return await c.post("/internal/sessions", json=body)

            for label, request, count in (("baseline GET /health/live", health, total * 5), ("login", login, total)):
                started = time.perf_counter()
                latencies = await measure(client, clients, count, request)
                print(summary(label, latencies, time.perf_counter() - started))
    finally:
        await asyncio.to_thread(system.stop)
        await asyncio.to_thread(stack.stop)
    print(f"{clients} concurrent clients; argon2id t=2, m=19 MiB, p=1 (accounts.credentials.password_hasher)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--logins", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.logins))
