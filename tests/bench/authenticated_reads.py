"""Authenticated reads through the gateway: `GET /api/v1/me` with a bearer token, and "Mon compte" — its JSON
(`GET /api/v1/accounts/{id}/dashboard`, four parts asked of accounts and the notifier concurrently) and its page
(`GET /account` with the web session's cookie) — beside the gateway's trivial `GET /health/live` (the baseline)
measured in the same run, at 50 and 100 concurrent connections, with wrk; and accounts' own
`GET /internal/sessions/{id}` (what the gateway asks for the identity) for where the time goes.

    uv run python tests/bench/authenticated_reads.py [--seconds 5] [--connections 50 100]

Starts its own Kafka, PostgreSQL, accounts, notifier and gateway (state in .run/bench-auth-reads), then stops them.
Needs wrk (installed with apt-get when missing and run as root). GATEWAY_* variables reach the gateway, e.g.
GATEWAY_IDENTITY_CACHE_SECONDS=0 to read the identity from accounts on every request, as before the cache. The
per-client read limit is raised (GATEWAY_RATE_LIMIT_READ, wrk being one client): the reads are still counted.
"""

import argparse
import os
import re
import shutil
import subprocess
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
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure_wrk() -> str:
    if found := shutil.which("wrk"):
        return found
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return "wrk"


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, float]:
    """Requests per second, p50 and p99 (ms) of one wrk run; fails on any non-2xx answer."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers from {url}:\n{out}")

    def latency(percent: int) -> float:
        value, unit = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rate": rate, "p50": latency(50), "p99": latency(99)}


def main(seconds: int, connections: list[int]) -> None:
    ensure_wrk()
    state = ROOT / ".run" / "bench-auth-reads"
    shutil.rmtree(state, ignore_errors=True)
    stack = devstack.Stack(
        state, devstack.Ports(kafka=17092, kafka_controller=17093, postgres=17433, smtp=17025, mail_http=17080)
    )
    # wrk is one client: its reads would pass the gateway's per-client read limit (gateway.limits) in the first
    # second; the bench measures the cost of counting them, so the limit is raised, not the counting switched off.
    settings = {"GATEWAY_RATE_LIMIT_READ": "100000000/60"}
    settings |= {key: value for key, value in os.environ.items() if key.startswith("GATEWAY_")}  # e.g. the cache's
    # below 32768: a port in the ephemeral range may be held by some client socket (wrk opens thousands)
    ports = {"accounts": 17101, "notifier": 17105, "gateway": 17000}
    system = System(stack, log_dir=state / "service-logs", ports=ports, settings=settings)
    stack.start()
    try:
        system.start(("accounts", "notifier", "gateway"))
        gateway, accounts = system.url("gateway"), system.url("accounts")
        email = "bench-reads@lycee-bench.fr"
        form = {
            "institution_name": "Lycée Bench",
            "institution_kind": "school",
            "institution_identifier": new_uai(),
            "contact_name": "Bench",
            "email": email,
            "password": PASSWORD,
        }
        assert httpx.post(f"{gateway}/api/v1/accounts", json=form).status_code == 201
        opened = httpx.post(f"{gateway}/api/v1/sessions", json={"email": email, "password": PASSWORD})
        assert opened.status_code == 201, opened.text
        bearer = {"Authorization": f"Bearer {opened.json()['token']}"}
        me = httpx.get(f"{gateway}/api/v1/me", headers=bearer)
        assert me.status_code == 200, me.text
        session_id = _session_id(system, opened.json()["token"])
        account_id = next(iter(me.json()["memberships"]))
        cookie = {"Cookie": f"vp_session={opened.json()['token']}"}  # the portal's cookie holds the same token
        dashboard = httpx.get(f"{gateway}/api/v1/accounts/{account_id}/dashboard", headers=bearer).json()
        assert all(part["status"] != "unavailable" for part in dashboard.values()), dashboard
        assert httpx.get(f"{gateway}/account", headers=cookie).status_code == 200
        internal = {"X-Internal-Token": system.internal_token}
        runs = [
            ("gateway GET /health/live", f"{gateway}/health/live", {}),
            ("gateway GET /api/v1/me", f"{gateway}/api/v1/me", bearer),
            ("gateway GET Mon compte JSON", f"{gateway}/api/v1/accounts/{account_id}/dashboard", bearer),
            ("gateway GET /account (page)", f"{gateway}/account", cookie),
            ("accounts GET /internal/sessions/{id}", f"{accounts}/internal/sessions/{session_id}", internal),
        ]
        wrk(f"{gateway}/api/v1/me", 10, 1, bearer)  # warm-up
        for count in connections:
            baseline = None
            for label, url, headers in runs:
                result = wrk(url, count, seconds, headers)
                baseline = baseline or result["rate"]
                print(
                    f"{count:3} conn  {label:38} {result['rate']:7.0f} req/s  p50 {result['p50']:7.1f} ms  "
                    f"p99 {result['p99']:7.1f} ms  {result['rate'] / baseline:6.1%} of baseline"
                )
                time.sleep(1)
    finally:
        system.stop()
        stack.stop()
    print(f"wrk -t2, {seconds} s per run; the baseline is the gateway's /health/live in the same run")


def _session_id(system: System, token: str) -> str:
    """The accounts session id inside the gateway's signed token (same secret key as the gateway)."""
    sys.path.insert(0, str(ROOT / "services" / "gateway" / "src"))
    from gateway.sessions import Sessions

    return str(Sessions(system.secret_key).read(token))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, nargs="+", default=[50, 100])
    args = parser.parse_args()
    main(args.seconds, args.connections)
