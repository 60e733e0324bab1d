"""Enrollment's background work: holds of the waiting list that expire pass the place to the next in line, and
the shares of participation links that are due go out; the business gauges are counted (visiopass_enrolments by
status, visiopass_attendances).

Every replica runs the jobs; each pass locks what it works on with SKIP LOCKED. A hold ends by a conditional update
under its session's lock (enrollment.service.pass_on_expired_holds), so a hold expires and its place is offered
once whatever the replicas; a due share is sent under its row's lock (enrollment.links.send_due_shares), once. A
pass after downtime catches up everything due."""

from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy import func, select

from enrollment import links, service
from enrollment.models import attendances, enrolments
from enrollment.service import Rules
from servicekit.db import Database
from servicekit.outbox import Outbox
from servicekit.periodic import every

METRICS_EVERY_SECONDS = 15.0
STATUSES = ("pending", "confirmed", "rejected", "cancelled")
ENROLMENTS = Gauge("visiopass_enrolments", "Enrolments requested, by their status now (from the database)", ["status"])
ATTENDANCES = Gauge("visiopass_attendances", "Joins recorded through participation links (from the database)")


async def pass_on_expired_holds(db: Database, outbox: Outbox, rules: Rules) -> int:
    """One pass; the number of places offered anew."""
    async with db.transaction() as session:
        events = await service.pass_on_expired_holds(session, rules, datetime.now(UTC))
        await outbox.add_all(session, events)
    return len(events)


async def send_due_shares(db: Database, outbox: Outbox, rules: links.LinkRules | None = None) -> int:
    """One pass; the number of shares sent."""
    async with db.transaction() as session:
        events = await links.send_due_shares(session, rules or links.link_rules(), datetime.now(UTC))
        await outbox.add_all(session, events)
    return len(events)


async def run_holds_forever(db: Database, outbox: Outbox, rules: Rules, every_seconds: float) -> None:
    await every(
        every_seconds,
        lambda: pass_on_expired_holds(db, outbox, rules),
        "waiting-list hold job",
        done="waiting list: %d place(s) offered after expired holds",
    )


async def run_shares_forever(db: Database, outbox: Outbox, every_seconds: float) -> None:
    await every(every_seconds, lambda: send_due_shares(db, outbox), "link share job", done="links: %d share(s) sent")


async def measure(db: Database) -> None:
    """The business gauges, counted in the database (exact whatever the replicas and restarts)."""
    async with db.transaction() as session:
        by_status = dict(
            (await session.execute(select(enrolments.c.status, func.count()).group_by(enrolments.c.status)))
            .tuples()
            .all()
        )
        joins = await session.scalar(select(func.count()).select_from(attendances))
    for status in STATUSES:
        ENROLMENTS.labels(status).set(by_status.get(status, 0))
    ATTENDANCES.set(joins or 0)


async def run_metrics_forever(db: Database) -> None:
    await every(METRICS_EVERY_SECONDS, lambda: measure(db), "enrollment metrics")
