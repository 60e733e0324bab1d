"""Import of the issue's 5,000-row member file (37 bad rows) through the accounts service's HTTP API, beside
baselines measured in the same run: parsing the file alone, and importing a 1-row file.

    uv run python tests/bench/member_import.py [--runs 3]

Starts its own Kafka, PostgreSQL and the accounts service (state in .run/bench-import), then stops them.
Each run imports into a new institution, so every row creates an identity, a membership, an invitation
link and a MemberInvited event in the outbox.
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "deploy" / "local"), str(ROOT / "tests")]

import devstack  # noqa: E402
from accounts.csv_import import parse_members_csv  # noqa: E402
from identifiers import new_uai  # noqa: E402
from member_csv import build_5000_rows  # noqa: E402
from system import System  # noqa: E402

PASSWORD = "violet tramway under nineteen lanterns"
ONE_ROW = "Prénom;Nom;E-mail\r\nCamille;Martin;camille.martin@example.com\r\n".encode()


async def new_institution(client: httpx.AsyncClient, run: int, database_url: str) -> tuple[str, str]:
    email = f"bench-{run}@lycee-bench.fr"
    form = {
        "institution_name": f"Lycée Bench {run}",
        "institution_kind": "school",
        "institution_identifier": new_uai(),
        "contact_name": "Bench",
        "email": email,
        "password": PASSWORD,
        "source": f"10.3.{run // 250}.{run % 250 + 1}",  # sign-ups are limited per source
    }
    created = await client.post("/internal/accounts/", json=form)
    assert created.status_code == 201, created.text
    db = await asyncpg.connect(database_url.replace("+asyncpg", ""))  # only a verified manager invites
    try:
        await db.execute("UPDATE users SET email_verified_at = now() WHERE email = $1", email)
    finally:
        await db.close()
    session = await client.post(
        "/internal/sessions", json={"email": email, "password": PASSWORD, "source": "127.0.0.1"}
    )
    return created.json()["account_id"], session.json()["identity"]["user_id"]


async def timed_import(client: httpx.AsyncClient, run: int, data: bytes, database_url: str) -> tuple[float, dict]:  # type: ignore[type-arg]
    account_id, manager = await new_institution(client, run, database_url)
    started = time.perf_counter()
    response = await client.post(
        f"/internal/accounts/{account_id}/members/import",
        content=data,
        headers={"Content-Type": "text/csv", "X-Actor-Id": manager},
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed, response.json()


async def main(runs: int) -> None:
    state = ROOT / ".run" / "bench-import"
    shutil.rmtree(state, ignore_errors=True)
    stack = devstack.Stack(
        state, devstack.Ports(kafka=39492, kafka_controller=39493, postgres=35833, smtp=31425, mail_http=38425)
    )
    limits = {"ACCOUNTS_INVITATIONS_PER_DAY": "1000000"}  # the 5,000 rows in one go
    system = System(stack, log_dir=state / "service-logs", ports={"accounts": 38301}, settings=limits)
    data, _, good = build_5000_rows()
    await asyncio.to_thread(stack.start)
    try:
        await asyncio.to_thread(system.start, ("accounts",))
        headers = {"X-Internal-Token": system.internal_token}
        database_url = stack.database_url("accounts")
        async with httpx.AsyncClient(base_url=system.url("accounts"), headers=headers, timeout=120) as client:
            parse, small, full = [], [], []
            for run in range(runs):
                started = time.perf_counter()
                parse_members_csv(data)
                parse.append(time.perf_counter() - started)
                small.append((await timed_import(client, 2 * run, ONE_ROW, database_url))[0])
                elapsed, report = await timed_import(client, 2 * run + 1, data, database_url)
                assert (report["invited"], len(report["rejected"])) == (good, 37), report
                full.append(elapsed)
    finally:
        await asyncio.to_thread(system.stop)
        await asyncio.to_thread(stack.stop)
    for label, times in (
        ("parse only, in process", parse),
        ("import of a 1-row file", small),
        ("import of 5,000 rows", full),
    ):
        print(f"{label:24} median {statistics.median(times) * 1000:8.0f} ms  (runs: {len(times)})")
    print(f"5,000-row import / 1-row import: {statistics.median(full) / statistics.median(small):.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
