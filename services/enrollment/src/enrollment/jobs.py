"""Enrollment's background work: holds of the waiting list that expire pass the place to the next in line.

Every replica runs the job; each pass locks the sessions it works on with SKIP LOCKED and ends a hold by a
conditional update under that lock (enrollment.service.pass_on_expired_holds), so a hold expires and its place is
offered once whatever the replicas, and a pass after downtime catches up every hold due."""

import asyncio
import logging
from datetime import UTC, datetime

from enrollment import service
from enrollment.service import Rules
from servicekit.db import Database
from servicekit.outbox import Outbox

log = logging.getLogger(__name__)


async def pass_on_expired_holds(db: Database, outbox: Outbox, rules: Rules) -> int:
    """One pass; the number of places offered anew."""
    async with db.transaction() as session:
        events = await service.pass_on_expired_holds(session, rules, datetime.now(UTC))
        await outbox.add_all(session, events)
    return len(events)


async def run_holds_forever(db: Database, outbox: Outbox, rules: Rules, every_seconds: float) -> None:
    while True:
        try:
            offered = await pass_on_expired_holds(db, outbox, rules)
            if offered:
                log.info("waiting list: %d place(s) offered after expired holds", offered)
        except Exception:
            log.exception("waiting-list hold job failed; next pass in %.0f s", every_seconds)
        await asyncio.sleep(every_seconds)
