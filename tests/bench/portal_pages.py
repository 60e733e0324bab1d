"""Page weight and server time of the portal's main pages, beside the gateway's trivial `/health/live` measured
the same way in the same run.

    uv run python tests/bench/portal_pages.py [--requests 50]

For each page: the HTML's size (and gzip-compressed, what a compressing proxy would send), the size of the
style sheet and script it loads (cached a year by browsers: paid once), and the time to answer it, measured
from one client, one request at a time on loopback (p50/p95 of `--requests` requests: no queueing, so this is
the server's own time per page). Logged-in pages are asked for with a web session (the login form's cookie).
Starts its own Kafka, PostgreSQL, accounts, notifier and gateway (state in .run/bench-portal-pages).
"""

import argparse
import gzip
import re
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
PUBLIC = ["/", "/help", "/signup", "/login"]
SIGNED_IN = ["/account", "/account/members", "/account/information", "/account/me"]
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def timed(client: httpx.Client, path: str, count: int) -> tuple[httpx.Response, list[float]]:
    times = []
    answer = client.get(path)
    for _ in range(count):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    if answer.status_code != 200:
        raise RuntimeError(f"{path}: {answer.status_code}")
    return answer, times


def main(count: int) -> None:
    state = ROOT / ".run" / "bench-portal-pages"
    shutil.rmtree(state, ignore_errors=True)
    stack = devstack.Stack(
        state, devstack.Ports(kafka=18092, kafka_controller=18093, postgres=18433, smtp=18025, mail_http=18080)
    )
    ports = {"accounts": 18101, "notifier": 18105, "gateway": 18000}  # below the ephemeral range (32768)
    system = System(stack, log_dir=state / "service-logs", ports=ports)
    stack.start()
    try:
        system.start(("accounts", "notifier", "gateway"))
        base = system.url("gateway")
        email = "bench-pages@lycee-bench.fr"
        form = {
            "institution_name": "Lycée Bench",
            "institution_kind": "school",
            "institution_identifier": new_uai(),
            "contact_name": "Bench",
            "email": email,
            "password": PASSWORD,
        }
        assert httpx.post(f"{base}/api/v1/accounts", json=form).status_code == 201
        with httpx.Client(base_url=base, timeout=15) as anonymous, httpx.Client(base_url=base, timeout=15) as client:
            login = client.get("/login")
            token = CSRF.search(login.text).group(1)  # type: ignore[union-attr]
            done = client.post("/login", data={"_csrf_token": token, "email": email, "password": PASSWORD})
            assert done.status_code == 303, done.text
            _, baseline = timed(anonymous, "/health/live", count)
            base_p50 = statistics.median(baseline)
            print(f"{'page':24} {'HTML':>8} {'gzip':>7} {'assets':>8}  {'p50':>7} {'p95':>7}  p50 vs /health/live")
            print(f"{'/health/live':24} {'':8} {'':7} {'':8}  {base_p50:5.1f}ms {_p95(baseline):5.1f}ms")
            for who, path in [(anonymous, path) for path in PUBLIC] + [(client, path) for path in SIGNED_IN]:
                answer, times = timed(who, path, count)
                html = answer.content
                assets = sum(len(who.get(asset).content) for asset in set(ASSET.findall(answer.text)))
                p50 = statistics.median(times)
                print(
                    f"{path:24} {len(html):7,}B {len(gzip.compress(html)):6,}B {assets:7,}B  "
                    f"{p50:5.1f}ms {_p95(times):5.1f}ms  x{p50 / base_p50:4.1f}"
                )
    finally:
        system.stop()
        stack.stop()
    print(
        f"{count} sequential requests per page from one client on loopback; assets: the CSS and JS files a page loads"
    )


def _p95(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.95) - 1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    main(parser.parse_args().requests)
