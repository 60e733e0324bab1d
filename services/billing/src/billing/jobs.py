"""Billing's background work: the expiry job and the business metrics.

The expiry job runs in every replica; each pass takes a transaction-scoped advisory lock and does nothing when
another replica holds it. Exactly-once does not rest on the lock: a lot is expired by a conditional update
(`expired_at IS NULL`) under its account's wallet lock, and warned by one (`warned_at IS NULL`), so a second
replica, a rerun or a pass after downtime (which catches up every due lot) finds nothing left to do.

Business metrics are read from the database (ledger, documents, orders), not counted in memory: every replica
reports the same exact totals whatever restarts (take `max` across replicas, not `sum`)."""

import logging
import zlib
from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billing import wallet
from billing.models import documents, ledger, orders
from servicekit.db import Database
from servicekit.outbox import Outbox
from servicekit.periodic import every

EXPIRY_LOCK = zlib.crc32(b"billing:expiry-job")
METRICS_EVERY_SECONDS = 15.0

TOKENS = Gauge("visiopass_tokens", "Tokens moved by the ledger since the start, by kind", ["kind"])
REVENUE = Gauge("visiopass_revenue_cents", "Invoiced minus credited, in cents", ["part"])
PENDING_ORDERS = Gauge("visiopass_purchase_orders_pending", "Purchase orders awaiting an organiser's validation")
OLDEST_PENDING = Gauge(
    "visiopass_purchase_order_oldest_pending_age_seconds", "Age of the oldest purchase order awaiting validation"
)
PENDING_TOO_LONG = Gauge(
    "visiopass_purchase_orders_pending_too_long", "Purchase orders waiting longer than the alert threshold (20 h)"
)
KIND_NAMES = {"credit": "sold", "debit": "debited", "refund": "refunded", "expiry": "expired"}


async def expire_and_warn(session: AsyncSession, outbox: Outbox, now: datetime) -> int:
    """One pass: expire every due lot, warn of every lot expiring within 30 days; the number of events."""
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": EXPIRY_LOCK}):
        return 0
    events = []
    for account_id in await wallet.accounts_with_due_lots(session, now):
        await wallet.lock_wallet(session, account_id)
        events += await wallet.expire_due(session, account_id, now)
    events += await wallet.warn_expiring(session, now)
    await outbox.add_all(session, events)
    return len(events)


async def run_expiry_forever(db: Database, outbox: Outbox, every_seconds: float) -> None:
    async def one_pass() -> int:
        async with db.transaction() as session:
            return await expire_and_warn(session, outbox, datetime.now(UTC))

    await every(every_seconds, one_pass, "expiry job", done="expiry job: %d events")


async def measure(session: AsyncSession, alert_hours: float, now: datetime) -> None:
    for kind, tokens in await session.execute(select(ledger.c.kind, func.sum(ledger.c.tokens)).group_by(ledger.c.kind)):
        TOKENS.labels(KIND_NAMES[kind]).set(tokens or 0)
    sign = case((documents.c.kind == "invoice", 1), else_=-1)
    net, vat, gross = (
        await session.execute(
            select(
                func.coalesce(func.sum(sign * documents.c.net_cents), 0),
                func.coalesce(func.sum(sign * documents.c.vat_cents), 0),
                func.coalesce(func.sum(sign * documents.c.gross_cents), 0),
            )
        )
    ).one()
    for part, value in (("net", net), ("vat", vat), ("gross", gross)):
        REVENUE.labels(part).set(value)
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(orders.c.created_at)).where(orders.c.status == "awaiting_validation")
        )
    ).one()
    PENDING_ORDERS.set(count)
    OLDEST_PENDING.set((now - oldest).total_seconds() if oldest else 0)
    too_long = await session.scalar(
        select(func.count()).where(
            orders.c.status == "awaiting_validation",
            orders.c.created_at < now - func.make_interval(0, 0, 0, 0, 0, 0, alert_hours * 3600),
        )
    )
    PENDING_TOO_LONG.set(too_long or 0)


async def measure_forever(db: Database, alert_hours: float) -> None:
    for label in KIND_NAMES.values():
        TOKENS.labels(label).set(0)

    async def one_pass() -> None:
        async with db.transaction() as session:
            await measure(session, alert_hours, datetime.now(UTC))

    await every(METRICS_EVERY_SECONDS, one_pass, "billing metrics", level=logging.WARNING)
