"""The gateway's short-lived identity cache: kept at most its ttl, one read for concurrent requests, forgotten on
clear() (reads under way included), failures never kept. A fake clock: no wall-clock assertion."""

import asyncio

import httpx
import pytest

from gateway.identities import IdentityCache
from gateway.upstream import Upstream


async def settle() -> None:
    """Let every ready task run its next steps."""
    for _ in range(5):
        await asyncio.sleep(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Accounts:
    """Counts reads; each answers `version`, and waits for `gate` when one is set."""

    def __init__(self) -> None:
        self.reads = 0
        self.version = 1
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def read(self) -> dict[str, int]:
        self.reads += 1
        version = self.version
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("accounts is down")
        return {"version": version}


async def test_an_answer_is_kept_no_longer_than_the_ttl() -> None:
    clock, accounts = Clock(), Accounts()
    cache = IdentityCache(0.5, clock)
    assert await cache.get("s", accounts.read) == {"version": 1}
    accounts.version = 2
    clock.now += 0.2
    assert await cache.get("s", accounts.read) == {"version": 1}  # younger than half the ttl: kept, not re-read
    assert accounts.reads == 1
    clock.now += 0.31  # 0.51 s after the read started
    assert await cache.get("s", accounts.read) == {"version": 2}
    assert accounts.reads == 2


async def test_once_half_the_ttl_has_passed_a_read_starts_and_the_kept_answer_serves_meanwhile() -> None:
    clock, accounts = Clock(), Accounts()
    cache = IdentityCache(0.5, clock)
    await cache.get("s", accounts.read)
    accounts.version, accounts.gate = 2, asyncio.Event()
    clock.now += 0.3
    assert await cache.get("s", accounts.read) == {"version": 1}  # served at once, a refresh under way
    assert await cache.get("s", accounts.read) == {"version": 1}
    await settle()
    assert accounts.reads == 2  # one refresh only
    accounts.gate.set()
    await settle()
    assert await cache.get("s", accounts.read) == {"version": 2}
    clock.now += 0.49  # the refreshed answer counts from when its read started
    assert await cache.get("s", accounts.read) == {"version": 2}
    clock.now += 0.02
    accounts.gate = None
    accounts.version = 3
    assert await cache.get("s", accounts.read) == {"version": 3}


async def test_concurrent_requests_for_one_session_make_one_read() -> None:
    accounts = Accounts()
    accounts.gate = asyncio.Event()
    cache = IdentityCache(0.5, Clock())
    waiting = [asyncio.ensure_future(cache.get("s", accounts.read)) for _ in range(50)]
    await settle()
    accounts.gate.set()
    assert await asyncio.gather(*waiting) == [{"version": 1}] * 50
    assert accounts.reads == 1
    await cache.get("other", accounts.read)
    assert accounts.reads == 2  # one entry per session


async def test_clear_forgets_kept_answers_and_reads_under_way() -> None:
    accounts = Accounts()
    cache = IdentityCache(0.5, Clock())
    await cache.get("s", accounts.read)
    accounts.version = 2
    cache.clear()
    assert await cache.get("s", accounts.read) == {"version": 2}

    accounts.version, accounts.gate = 3, asyncio.Event()
    cache.clear()
    before = asyncio.ensure_future(cache.get("s", accounts.read))  # a read started before a change...
    await settle()
    accounts.version = 4
    cache.clear()  # ...that ended here
    after = asyncio.ensure_future(cache.get("s", accounts.read))
    await settle()
    accounts.gate.set()
    assert (await before, await after) == ({"version": 3}, {"version": 4})
    assert await cache.get("s", accounts.read) == {"version": 4}  # the older read was not kept


async def test_a_failed_read_is_not_kept() -> None:
    accounts = Accounts()
    cache = IdentityCache(0.5, Clock())
    accounts.fail = True
    with pytest.raises(RuntimeError):
        await cache.get("s", accounts.read)
    assert len(cache) == 0
    accounts.fail = False
    assert await cache.get("s", accounts.read) == {"version": 1}


async def test_every_call_that_may_change_something_clears_after_it_ended() -> None:
    calls: list[str] = []
    cleared: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        assert not cleared or cleared[-1] != request.method  # cleared once the answer is in, not before
        return httpx.Response(204)

    upstream = Upstream("accounts", "http://accounts", 1.0, None, after_change=lambda: cleared.append(calls[-1]))
    upstream.client = httpx.AsyncClient(base_url="http://accounts", transport=httpx.MockTransport(answer))
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        await upstream.call(method, "/internal/x")
    assert cleared == ["POST", "PUT", "PATCH", "DELETE"]
    await upstream.close()


async def test_expired_answers_are_dropped_as_new_ones_come() -> None:
    clock, accounts = Clock(), Accounts()
    cache = IdentityCache(0.5, clock)
    for session in range(3000):
        await cache.get(session, accounts.read)
        clock.now += 0.001  # 500 sessions read within any ttl
    assert len(cache) < 1100
