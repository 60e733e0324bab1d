"""A short-lived cache of the public planning's answers, per replica.

The planning is read far more than it changes, and most readers ask the same few questions (this month, this
month for one theme). An answer is kept for `ttl` seconds, so a change reaches readers within that time whatever
replica made it; a change made through this replica clears the cache at once. Places left come from enrollment's
events and are as fresh as `ttl` (the enrolment itself is decided by enrollment, never from this figure)."""

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ReadCache:
    def __init__(self, ttl: float, max_entries: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        now = self._clock()
        found = self._entries.get(key)
        if found is not None and found[0] > now:
            return found[1]
        value = await compute()
        if self.ttl > 0:
            self._entries.pop(key, None)
            self._entries[key] = (now + self.ttl, value)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest entry
        return value

    def clear(self) -> None:
        self._entries.clear()
