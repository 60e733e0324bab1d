"""A real Prometheus (Debian's package, tests/prometheus_tools.py) on loopback, with the project's
deploy/prometheus/prometheus.yml (its jobs, their labels and its rules; only the targets become the test system's
ports and the intervals a second), scrapes every service of a running system: each is `up`, the alert rules are
loaded, and a business counter (billing's tokens debited) moves after an enrolment."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_tools import binary
from test_billing_saga import funded_account
from test_enrolment_saga import clients, new_session, status_until

from devstack import terminate
from kit import wait_for

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def local_config(system: Any, port: int) -> dict[str, Any]:
    """The project's config, its targets replaced by where the test system's processes listen."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        name = job["job_name"]
        url = urlsplit(system.metrics_url(name)) if name != "prometheus" else urlsplit(f"http://127.0.0.1:{port}")
        assert name == "prometheus" or url.path == job["metrics_path"], name
        for group in job["static_configs"]:
            group["targets"] = [url.netloc]
    return config


@pytest.fixture
def prometheus(system, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local_config(system, port)))
    for rule_file in yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text()).get("rule_files", []):
        shutil.copy(PROMETHEUS_DIR / rule_file, tmp_path / rule_file)
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            str(binary("prometheus")),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(process, 15)
        log.close()


async def query(client: httpx.AsyncClient, promql: str) -> dict[str, float]:
    """An instant query's result, each series by its `job` (or its first label) to its value."""
    try:
        answer = await client.get("/api/v1/query", params={"query": promql})
    except httpx.TransportError:
        return {}  # not listening yet
    if answer.status_code != 200:
        return {}
    return {
        series["metric"].get("job", next(iter(series["metric"].values()), "")): float(series["value"][1])
        for series in answer.json()["data"]["result"]
    }


async def test_a_real_prometheus_scrapes_every_service_and_sees_an_enrolment_debited(system, prometheus) -> None:  # type: ignore[no-untyped-def]
    jobs = {
        job["job_name"] for job in yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["scrape_configs"]
    }
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:

        async def every_job_up() -> bool:
            up = await query(client, "up")
            return set(up) == jobs and all(value == 1 for value in up.values())

        await wait_for(every_job_up, timeout=90, what=f"every job of {sorted(jobs)} up")
        durations = await query(client, "scrape_duration_seconds")
        assert set(durations) == jobs
        print("scrape duration: " + ", ".join(f"{job} {durations[job] * 1000:.1f} ms" for job in sorted(durations)))
        memory = await query(client, "process_resident_memory_bytes")
        assert set(memory) == jobs  # every process reports its memory (prometheus_client's process collector)
        print("resident memory: " + ", ".join(f"{job} {memory[job] / 2**20:.0f} MiB" for job in sorted(memory)))
        rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        assert {"visiopass-alerts", "visiopass-slo-ratios"} <= {group["name"] for group in rules}

        gateway, enrollment = clients(system)
        async with gateway, enrollment:
            account_id = await funded_account(system, gateway, 6)  # billing's probe takes one
            debited = 'sum(visiopass_tokens{kind="debited"})'
            before = sum((await query(client, debited)).values())
            session_id = await new_session(system, enrollment, price_tokens=5)
            asked = await enrollment.post(
                "/internal/enrolments",
                json={"account_id": account_id, "session_id": session_id, "expected_participants": 3},
            )
            assert asked.status_code == 202, asked.text
            await status_until(enrollment, asked.json()["id"], account_id, "confirmed")
            started = time.monotonic()

            async def counted() -> bool:  # billing measures its ledger every 15 s; Prometheus scrapes every 1 s
                return sum((await query(client, debited)).values()) >= before + 5

            await wait_for(counted, timeout=60, what="the 5 tokens debited seen by Prometheus")
            print(f"debit seen by Prometheus {time.monotonic() - started:.1f} s after the confirmation")
