"""The rate limiter's counting, without a store (as when the store is down: each process counts on its own), its
rates and route classes, and what an idempotency key may be. Across replicas, with the store:
tests/test_api_store.py."""

from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler

from gateway.idempotency import IdempotentOperation, _checked_key, _keepable, is_idempotent
from gateway.limits import CLASSES, Rate, RateLimiter, route_class_of
from gateway.main import app
from gateway.store import Store
from servicekit.http import ProblemError


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **rates: Rate) -> RateLimiter:
    store = Store("postgresql+asyncpg://postgres@127.0.0.1:1/never", pool_size=1)  # never migrated: never used
    return RateLimiter({name: rates.get(name, Rate(1000, 60)) for name in CLASSES}, store, clock)


async def admitted(limits: RateLimiter, route_class: str, client: str, attempts: int) -> int:
    count = 0
    for _ in range(attempts):
        try:
            await limits.admit(route_class, client)
        except ProblemError as refusal:
            assert (refusal.status_code, refusal.code) == (429, "rate_limited")
            break
        count += 1
    return count


async def test_a_client_gets_its_rate_per_window_then_429_with_the_wait_until_the_next_window() -> None:
    clock = Clock(1_000_040.0)  # 20 s into a 60-second window (windows are aligned on the epoch)
    limits = limiter(clock, login=Rate(3, 60))
    assert await admitted(limits, "login", "ip:192.0.2.1", 10) == 3
    with pytest.raises(ProblemError) as refused:
        await limits.admit("login", "ip:192.0.2.1")
    assert refused.value.members["retry_after"] == 40
    assert refused.value.headers == {"Retry-After": "40"}
    clock.now += 39.5
    assert await admitted(limits, "login", "ip:192.0.2.1", 1) == 0
    clock.now += 0.5  # the next window
    assert await admitted(limits, "login", "ip:192.0.2.1", 10) == 3


async def test_clients_and_classes_are_counted_apart() -> None:
    limits = limiter(Clock(1_000_000.0), mail=Rate(2, 60), read=Rate(5, 60))
    assert await admitted(limits, "mail", "ip:192.0.2.1", 5) == 2
    assert await admitted(limits, "mail", "ip:192.0.2.2", 5) == 2
    assert await admitted(limits, "read", "ip:192.0.2.1", 9) == 5
    assert await admitted(limits, "mail", "user:u1", 5) == 2


async def test_the_wait_is_at_least_one_second() -> None:
    limits = limiter(Clock(1_000_019.9), read=Rate(1, 20))
    await limits.admit("read", "ip:192.0.2.1")
    with pytest.raises(ProblemError) as refused:
        await limits.admit("read", "ip:192.0.2.1")
    assert refused.value.members["retry_after"] == 1


async def test_flushing_without_a_store_forgets_ended_windows_and_keeps_counting() -> None:
    clock = Clock(1_000_000.0)
    limits = limiter(clock, write=Rate(2, 10))
    assert await admitted(limits, "write", "ip:192.0.2.1", 5) == 2
    await limits.flush()  # store not there: the counts stay, the limit holds
    assert await admitted(limits, "write", "ip:192.0.2.1", 5) == 0
    clock.now += 10
    await limits.flush()
    assert limits._counts == {}
    assert await admitted(limits, "write", "ip:192.0.2.1", 5) == 2


@pytest.mark.parametrize(
    ("value", "rate"), [("10/60", Rate(10, 60)), (" 5 / 1 ", Rate(5, 1)), (Rate(2, 3), Rate(2, 3))]
)
def test_rates_are_written_count_per_seconds(value: Any, rate: Rate) -> None:
    assert Rate.parse(value) == rate


@pytest.mark.parametrize("value", ["10", "10/", "/60", "0/60", "10/0", "-1/60", "a/b", "10/60/2"])
def test_a_malformed_rate_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(value)


def handlers() -> dict[tuple[str, str], HTTPRouteHandler]:
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in handler.http_methods:
                found[(method, route.path)] = handler
    return found


@pytest.mark.parametrize(
    ("method", "path", "route_class"),
    [
        ("POST", "/api/v1/sessions", "login"),
        ("POST", "/api/v1/me/password", "login"),
        ("POST", "/api/v1/accounts", "mail"),
        ("POST", "/api/v1/password-resets", "mail"),
        ("POST", "/api/v1/accounts/verification/resend", "mail"),
        ("POST", "/api/v1/accounts/{account_id:uuid}/members", "write"),
        ("DELETE", "/api/v1/sessions/current", "write"),
        ("GET", "/api/v1/me", "read"),
        ("GET", "/health/live", None),
        ("GET", "/health/ready", None),
    ],
)
def test_routes_fall_in_their_class(method: str, path: str, route_class: str | None) -> None:
    handler = handlers()[(method, path)]
    assert route_class_of(handler, method, path) == route_class


def test_the_routes_that_create_take_an_idempotency_key() -> None:
    idempotent = {key for key, handler in handlers().items() if is_idempotent(handler)}
    assert {
        ("POST", "/api/v1/accounts"),
        ("POST", "/api/v1/accounts/{account_id:uuid}/members"),
        ("POST", "/api/v1/accounts/{account_id:uuid}/members/import"),
    } <= idempotent
    assert all(method == "POST" for method, _ in idempotent)
    assert all(issubclass(handlers()[key].operation_class, IdempotentOperation) for key in idempotent)


@pytest.mark.parametrize("key", ["a", "x" * 255, "0b6c1d3e-9a7f-4e55-b8a2-2f1c9d7e6a10", "with space ~!"])
def test_idempotency_keys_are_printable_ascii(key: str) -> None:
    assert _checked_key([key.encode()]) == key


@pytest.mark.parametrize("key", [b"", b"x" * 256, "clé".encode(), b"tab\there", b"nul\x00"])
def test_other_idempotency_keys_are_refused(key: bytes) -> None:
    with pytest.raises(ProblemError) as refused:
        _checked_key([key])
    assert (refused.value.status_code, refused.value.code) == (400, "invalid_idempotency_key")


def test_two_idempotency_keys_are_refused() -> None:
    with pytest.raises(ProblemError):
        _checked_key([b"one", b"two"])


@pytest.mark.parametrize(
    ("status", "kept"), [(200, True), (201, True), (400, True), (409, True), (401, False), (429, False), (502, False)]
)
def test_answers_kept_for_replay(status: int, kept: bool) -> None:
    assert _keepable(status, [b"{}"]) is kept
