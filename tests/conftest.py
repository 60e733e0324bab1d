"""Cross-service fixtures: the six services as real processes on the test stack."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from webhook_receiver import Tls, make_tls

from system import WITH_DATABASE, System

_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))  # as in the root conftest.py
TEST_PORTS = {
    name: port + _OFFSET
    for name, port in {
        "accounts": 28101,
        "billing": 28102,
        "catalogue": 28103,
        "enrollment": 28104,
        "notifier": 28105,
        "gateway": 28000,
    }.items()
}
# The gateway's metrics listener: not its port + 100 (System's default), which is the next suite's gateway when
# suites run side by side with offsets 100 apart.
TEST_GATEWAY_METRICS_PORT = 28050 + _OFFSET


@pytest.fixture(scope="session")
def webhook_tls(stack) -> Tls:  # type: ignore[no-untyped-def]
    """The CA the notifier trusts for webhook receivers, and a certificate it signed for test receivers on 127.0.0.1."""
    return make_tls(Path(stack.state_dir) / "webhook-tls")


@pytest.fixture(scope="session")
async def system(stack, kafka, webhook_tls) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    """Services on fresh databases: state left by an earlier run (e.g. login throttles) must not leak in."""
    admin = await asyncpg.connect(stack.database_url("postgres").replace("+asyncpg", ""))
    try:
        for name in WITH_DATABASE:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    # every test signs up from 127.0.0.1: the per-source sign-up limit would stop the suite (it has tests of its own)
    # and logs in and mails as much: the gateway's limits too (tests/test_api_store.py tests them on their own gateways)
    limits = {"ACCOUNTS_SIGN_UPS_PER_SOURCE_PER_HOUR": "100000"} | {
        f"GATEWAY_RATE_LIMIT_{route_class}": "100000/60" for route_class in ("LOGIN", "MAIL", "WRITE", "READ", "JOIN")
    }
    # tests read the planning right after changing it: no answer reused (servicekit.read_cache has tests of its own)
    limits |= {"CATALOGUE_PLANNING_CACHE_SECONDS": "0", "GATEWAY_PLANNING_CACHE_SECONDS": "0"}
    # webhook receivers of the tests: their CA trusted, and a failing one given up (and disabled) within seconds
    limits |= {
        "NOTIFIER_WEBHOOK_CA_BUNDLE": str(webhook_tls.ca),
        "NOTIFIER_WEBHOOK_MAX_ATTEMPTS": "3",
        "NOTIFIER_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    }
    running = System(
        stack,
        log_dir=Path(stack.state_dir) / "service-logs",
        ports=dict(TEST_PORTS),
        settings=limits,
        gateway_metrics_port=TEST_GATEWAY_METRICS_PORT,
    )
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)
