"""A short-lived, in-process cache of the identities behind sessions (docs/accounts.md, "Sessions").

An answer is kept `ttl` seconds from the moment its read from accounts started, so what it serves is never older
than `ttl`. Concurrent requests for one session share one read (single flight); a read that fails is not kept.
Once half of `ttl` has passed, the next request starts a new read in the background and the kept answer is
served until it lands (never past its `ttl`), so a busy session does not wait for accounts every `ttl`.
`clear()` forgets everything, reads under way included: the gateway calls it after each change it sends to
accounts, so a change made through this process is seen by its next request at once.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

PRUNE_ABOVE = 1024  # entries kept before the expired ones are first dropped


@dataclass
class _Entry:
    expires: float
    answer: asyncio.Future[Any]
    refreshing: bool = False


class IdentityCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._prune_at = PRUNE_ABOVE  # twice what the last pruning kept: pruning costs O(1) a read on average

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        """`read()`'s answer for `key`: a kept one younger than `ttl`, the one under way, or a new read's."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or entry.expires <= now:
            if len(self._entries) >= self._prune_at:
                self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
                self._prune_at = max(PRUNE_ABOVE, 2 * len(self._entries))
            entry = self._start(key, read, now)
            self._entries[key] = entry
        elif entry.answer.done() and not entry.refreshing and entry.expires - now < self.ttl / 2:
            entry.refreshing = True
            self._start(key, read, now, replacing=entry)
        return await asyncio.shield(entry.answer)  # one caller going away does not cancel the others' read

    def _start(
        self, key: Hashable, read: Callable[[], Awaitable[Any]], now: float, replacing: _Entry | None = None
    ) -> _Entry:
        entry = _Entry(now + self.ttl, asyncio.ensure_future(read()))

        def landed(answer: asyncio.Future[Any]) -> None:
            failed = answer.cancelled() or answer.exception() is not None
            current = self._entries.get(key)
            if replacing is not None and current is replacing:  # a refresh: replaces the kept answer, or gives up
                if failed:
                    replacing.refreshing = False
                else:
                    self._entries[key] = entry
            elif failed and current is entry:
                del self._entries[key]

        entry.answer.add_done_callback(landed)
        return entry

    def clear(self) -> None:
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)
