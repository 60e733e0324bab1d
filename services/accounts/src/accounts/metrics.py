"""Accounts' business gauges, counted in its database every 15 s in every replica (exact whatever the replicas and
restarts): visiopass_accounts by state — open (not closed) and verified (open, with a manager whose address is
verified, the state billing waits for before it debits)."""

import logging

from prometheus_client import Gauge
from sqlalchemy import exists, func, select

from accounts.models import institutions, memberships, users
from servicekit.db import Database
from servicekit.periodic import every

METRICS_EVERY_SECONDS = 15.0
ACCOUNTS = Gauge("visiopass_accounts", "Institutions' accounts by state: open, verified (from the database)", ["state"])


async def measure(db: Database) -> None:
    verified_manager = exists().where(
        memberships.c.institution_id == institutions.c.id,
        memberships.c.role == "manager",
        memberships.c.user_id == users.c.id,
        users.c.email_verified_at.is_not(None),
    )
    async with db.transaction() as session:
        open_, verified = (
            await session.execute(
                select(func.count(), func.count().filter(verified_manager)).where(institutions.c.closed_at.is_(None))
            )
        ).one()
    ACCOUNTS.labels("open").set(open_)
    ACCOUNTS.labels("verified").set(verified)


async def measure_forever(db: Database) -> None:
    await every(METRICS_EVERY_SECONDS, lambda: measure(db), "accounts metrics", level=logging.WARNING)
