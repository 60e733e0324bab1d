"""The gateway's shared store: its own PostgreSQL database (GATEWAY_DATABASE_URL), which every replica uses for
what they must agree on: rate-limit counters (gateway.limits) and idempotency keys (gateway.idempotency).

The gateway starts without waiting for it: its migrations run in the background as soon as the database answers
(under servicekit's advisory lock, so replicas take turns), and readiness (`/health/ready`, check `store`) waits
for that first migration only. After that, an outage of the store never makes the gateway unready: each user of
the store says what it does without it (rate limits go on counting in the process; a request carrying an
Idempotency-Key is refused with 503), and the outage is logged once, not per request. Once an outage is seen,
requests stop using the store (none waits on a host that does not answer) until it answers again: it is tried
every WATCH_SECONDS.
"""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence

from servicekit import migrations
from servicekit.db import Database
from servicekit.runtime import until_ready

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how often a store known to be down is tried again


class Store:
    def __init__(self, database_url: str, pool_size: int) -> None:
        self.db = Database(database_url, pool_size=pool_size)
        self.migrated = False
        self._down = False

    async def run(self, jobs: Sequence[tuple[float, Callable[[], Awaitable[None]]]]) -> None:
        """Bring the schema up to date once the database answers (retrying as long as it takes), and run each
        `(seconds, job)` every `seconds`, for ever (a job does nothing in the store before `migrated`)."""
        every = [*jobs, (WATCH_SECONDS, self._watch)]
        await asyncio.gather(self._migrate(), *(self._every(seconds, job) for seconds, job in every))

    async def _migrate(self) -> None:
        await until_ready("gateway store", lambda: migrations.upgrade(self.db, "gateway"), math.inf)
        self.migrated = True

    @property
    def available(self) -> bool:
        """Migrated and not known to be down: requests use the store only then, so that an outage (a host that
        does not answer) never makes them wait; the background jobs and `_watch` notice its return."""
        return self.migrated and not self._down

    async def _watch(self) -> None:
        if self._down:
            await self.db.ping()
            self.recovered()

    async def ready(self) -> None:
        """Readiness: the schema is in place (a later outage is survived, not reported as unready)."""
        if not self.migrated:
            raise ConnectionError("the gateway store is not migrated yet")

    def failed(self, what: str, exc: BaseException) -> None:
        """Log an outage once (its kind, never statement values), until `recovered`."""
        if not self._down:
            self._down = True
            log.warning("gateway store unavailable (%s): %s", what, type(exc).__name__)

    def recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("gateway store available again")

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        """A failing run is logged (once per outage) and the next one tried."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()  # which says `recovered()` when it reached the store
            except Exception as exc:
                self.failed(getattr(job, "__name__", "job"), exc)

    async def dispose(self) -> None:
        await self.db.dispose()
