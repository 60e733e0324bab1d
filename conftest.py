"""Real infrastructure for the whole suite: one Kafka, one PostgreSQL and one SMTP catcher per test session.

They run on ports and a state folder of their own (`.run/test`), so a `make up` can run beside the tests.
Tests that need them use the `stack` fixture (directly or through `fresh_database`) and are marked `infra`.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from contracts import TOPICS

ROOT = Path(__file__).parent
# Shifts every test port, so that two suites (e.g. two work trees) can run side by side on one machine.
PORT_OFFSET = int(os.environ.get("VISIOPASS_TEST_PORT_OFFSET", "0"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def stack() -> Iterator["devstack.Stack"]:  # type: ignore[name-defined]  # noqa: F821
    import devstack

    state_dir = Path(os.environ.get("VISIOPASS_TEST_STATE_DIR", ROOT / ".run" / "test"))
    ports = devstack.Ports(
        *(port + PORT_OFFSET for port in (29092, 29093, 25433, 21025, 28025))  # kafka, controller, pg, smtp, mail
    )
    infra = devstack.Stack(state_dir, ports, fast=True)
    infra.install()
    infra.start()
    try:
        yield infra
    finally:
        infra.stop()


@pytest.fixture(scope="session")
async def kafka(stack: "devstack.Stack") -> str:  # type: ignore[name-defined]  # noqa: F821
    from servicekit.kafka import ensure_topics

    await ensure_topics(stack.kafka_bootstrap, [n for t in TOPICS.values() for n in (t.name, t.dlq)])
    return str(stack.kafka_bootstrap)


@pytest.fixture
async def fresh_database(stack: "devstack.Stack") -> AsyncIterator[str]:  # type: ignore[name-defined]  # noqa: F821
    """A new, empty database for one test; its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_dsn = stack.database_url("postgres").replace("+asyncpg", "")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield stack.database_url(name)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
