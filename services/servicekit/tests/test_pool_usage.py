"""db_pool_connections follows a database pool's connections as they are taken and given back (real PostgreSQL)."""

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from servicekit.db import POOL_USAGE, Database

pytestmark = pytest.mark.infra


def connections(state: str) -> float | None:
    labels = {"service": "kit-test", "pool": "pool-test", "state": state}
    return REGISTRY.get_sample_value("db_pool_connections", labels)


async def test_the_pool_gauge_counts_connections_in_use_and_idle(fresh_database) -> None:  # type: ignore[no-untyped-def]
    db = Database(fresh_database, pool_size=3)
    POOL_USAGE.watch("kit-test", "pool-test", db)
    try:
        assert (connections("in_use"), connections("idle"), connections("size")) == (0, 0, 3)
        async with db.transaction() as first, db.transaction() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            assert connections("in_use") == 2
        assert (connections("in_use"), connections("idle")) == (0, 2)
    finally:
        POOL_USAGE.pools.remove(("kit-test", "pool-test", db))
        await db.dispose()
