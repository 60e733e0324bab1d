"""A background job run every N seconds, for ever, in every replica: the services' gauges read from their
database, billing's expiry job, enrollment's hold and link-share jobs.

A pass that fails is logged and the next one runs as planned: a database that does not answer for a while costs
passes, never the loop. Cancellation (the service stopping) ends it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(
    seconds: float,
    one_pass: Callable[[], Awaitable[int | None]],
    what: str,
    *,
    done: str = "",
    level: int = logging.ERROR,
) -> None:
    """Run `one_pass` now, then `seconds` after each pass ends, for ever. An Exception in a pass is logged at
    `level` with its traceback ("<what> failed; next pass in N s"); `done`, a %d format, is logged (INFO) after a
    pass that returns a count other than 0."""
    while True:
        try:
            count = await one_pass()
            if done and count:
                log.info(done, count)
        except Exception:
            log.log(level, "%s failed; next pass in %.0f s", what, seconds, exc_info=True)
        await asyncio.sleep(seconds)
