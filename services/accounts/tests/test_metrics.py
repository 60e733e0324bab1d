"""Accounts' business gauges against a real PostgreSQL: open and verified accounts."""

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from accounts import metrics
from accounts_world import institution

pytestmark = pytest.mark.infra


def accounts_in(state: str) -> float | None:
    return REGISTRY.get_sample_value("visiopass_accounts", {"state": state})


async def test_the_gauges_count_open_and_verified_accounts(db):
    await institution(db, "a@lycee-hugo.fr", "Lycée Hugo", verified=True)
    await institution(db, "b@lycee-zola.fr", "Lycée Zola", verified=False)
    closed = await institution(db, "c@lycee-sand.fr", "Lycée Sand", verified=True)
    async with db.transaction() as session:
        await session.execute(text("UPDATE institutions SET closed_at = now() WHERE id = :id"), {"id": closed[0]})
    await metrics.measure(db)
    assert (accounts_in("open"), accounts_in("verified")) == (2, 1)
