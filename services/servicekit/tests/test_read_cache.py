"""servicekit.read_cache: answers kept for their time, one computation for readers who miss together, failures
never kept, a reader who goes away never spoils the answer for the others."""

import asyncio

import pytest

from servicekit.read_cache import ReadCache


async def settle() -> None:
    """Let the background recomputation run and settle."""
    for _ in range(5):
        await asyncio.sleep(0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_answer_is_kept_for_its_time_then_recomputed_while_readers_get_the_previous_one() -> None:
    clock, calls = Clock(), []

    async def compute() -> int:
        calls.append(clock.now)
        return len(calls)

    cache = ReadCache(ttl=2.0, clock=clock)
    assert [await cache.get("march", compute) for _ in range(3)] == [1, 1, 1]
    clock.now = 2.5
    assert await cache.get("march", compute) == 1  # stale, while one recomputation runs
    await settle()
    assert await cache.get("march", compute) == 2
    assert await cache.get("april", compute) == 3
    cache.clear()
    assert await cache.get("march", compute) == 4
    assert calls == [0.0, 2.5, 2.5, 2.5]


async def test_readers_who_miss_together_share_one_computation() -> None:
    release, calls = asyncio.Event(), []

    async def slow() -> str:
        calls.append(1)
        await release.wait()
        return "planning"

    cache = ReadCache(ttl=2.0)
    readers = [asyncio.create_task(cache.get("march", slow)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == ["planning"] * 50
    assert len(calls) == 1


async def test_a_failure_is_given_to_every_waiting_reader_and_never_kept() -> None:
    clock, attempts = Clock(), []

    async def flaky() -> str:
        attempts.append(1)
        await asyncio.sleep(0)
        if len(attempts) in (1, 3):
            raise ConnectionError("database down")
        return f"planning {len(attempts)}"

    cache = ReadCache(ttl=2.0, clock=clock)
    first = await asyncio.gather(*(cache.get("march", flaky) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in first) and len(attempts) == 1
    assert await cache.get("march", flaky) == "planning 2"
    clock.now = 5.0
    assert await cache.get("march", flaky) == "planning 2"  # the refresh fails: the last good answer stays
    await settle()
    assert await cache.get("march", flaky) == "planning 2"  # and the next reader tries again
    await settle()
    assert await cache.get("march", flaky) == "planning 4"


async def test_a_reader_who_goes_away_does_not_cancel_the_others_answer() -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "planning"

    cache = ReadCache(ttl=2.0)
    leaving = asyncio.create_task(cache.get("march", slow))
    staying = asyncio.create_task(cache.get("march", slow))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == "planning"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_no_time_means_no_cache_and_entries_stay_bounded() -> None:
    calls = []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    assert [await ReadCache(ttl=0).get("k", compute) for _ in range(2)] == [1, 2]
    bounded = ReadCache(ttl=60.0, max_entries=3)
    for key in range(10):
        await bounded.get(key, compute)
    assert len(bounded._entries) == 3
