"""A short-lived cache of answers that many readers ask for at once (the public planning, say), per process.

An answer is fresh for `ttl` seconds. Then the next reader starts one recomputation and, like every reader until
it is done, gets the previous answer at once (stale while revalidating): nobody waits for a recomputation but the
first reader of a key. So a change reaches readers within `ttl` plus one computation, whatever process made it; the
owner of the data clears the cache when it changes the data itself. Readers who miss together share one
computation (single flight). A failed computation is not kept: its readers get its error, the stale answer (if
any) stays until a computation succeeds, and the next reader tries again."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ReadCache:
    def __init__(self, ttl: float, max_entries: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl <= 0:
            return await compute()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest entry
        if entry.fresh_until <= self._clock() and entry.computing is None:
            # A task of its own: a reader who goes away (a closed connection) never cancels it for the others.
            entry.computing = asyncio.ensure_future(compute())
            entry.computing.add_done_callback(lambda done: self._settle(entry, done))
        if entry.has_value:
            return entry.value
        assert entry.computing is not None
        return await asyncio.shield(entry.computing)

    def _settle(self, entry: "_Entry", task: "asyncio.Task[Any]") -> None:
        entry.computing = None
        if not task.cancelled() and task.exception() is None:
            entry.value, entry.has_value, entry.fresh_until = task.result(), True, self._clock() + self.ttl

    def clear(self) -> None:
        self._entries.clear()


class _Entry:
    __slots__ = ("computing", "fresh_until", "has_value", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.has_value = False
        self.fresh_until = 0.0
        self.computing: asyncio.Task[Any] | None = None
