"""Rate limits of the public API: per client and per route class, shared by every gateway replica through the
gateway's store (gateway.store). A request over its limit gets 429 `rate_limited` with `Retry-After`.

Route classes. A route names its class with `opt={"rate_limit": ...}` (see RATE_LIMIT); any other route under
`/api/` is `read` (GET, HEAD, OPTIONS) or `write` (the rest); other paths (health, schema, pages) are not limited
unless they name a class.
- `login`: a password is checked (log in, change of password or email, closure);
- `mail`: someone gets a mail (sign-up, verification resend, password reset, re-invitation);
- `join`: the public pages of a participation link, a feedback link and certificate checks (gateway.join_pages):
  forms that try a secret (a link, an entry code, a certificate's code), from addresses that a whole school's
  pupils may share, hence a limit of its own;
- `write`, `read`: everything else.
Each class has a rate `count/seconds` (GATEWAY_RATE_LIMIT_LOGIN, _MAIL, _WRITE, _READ, _JOIN), counted in fixed
windows aligned on the epoch, so that replicas agree on them without talking: at most `count` requests are admitted
in a window, hence at most 2 x `count` across a window's boundary.

The client. On a route that needs an identity, the authenticated caller: the API token (`token:<id>`) or the user
(`user:<id>`, whichever session they use), counted once the identity is known (`limited_identity`, the gateway's
`identity` dependency). On any other route, the client's address (gateway.source: proxies are believed only when
trusted), counted before anything else runs (`RateLimiter.middleware`).

Counting.
- `login` and `mail` are counted exactly: each request adds one to the shared counter (one upsert) and is refused
  once the total passes the limit. They are rare and dear anyway (a password hash, a mail).
- `read` and `write` are counted in the process and sent to the store in batches, every `flush_seconds` (one
  statement for all the clients seen), which answers the shared totals. A request is admitted while the last
  total heard plus what this process admitted since stays under the limit. So a read costs no round trip, and
  the limit holds across replicas to within what the other replicas admitted in the time this one takes to hear
  of it: their next flush, then its own (after sending a client's counts, a process asks for their total in
  REFRESHES more flushes, so that it hears the others' even when it admits nothing more). With N replicas
  serving one client, that is at most about (N - 1) x 2 x flush_seconds x the client's request rate more.
- Store down: logged once per outage (gateway.store); counting goes on in the process for every class, so each
  replica still holds the limit on its own (never unlimited, never a refusal because of the store), and the
  counts not yet sent reach the store when it is back.
"""

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send
from sqlalchemy import text

from gateway.source import client_address
from gateway.store import Store
from servicekit.http import ProblemError

log = logging.getLogger(__name__)

CLASSES = ("login", "mail", "write", "read", "join")
EXACT = frozenset({"login", "mail"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# After sending a client's counts, a process asks for their total in that many more flushes (adding 0): so it
# hears what the other replicas sent meanwhile even when it admits nothing more, before its next request.
REFRESHES = 3
PURGE_BATCH = 10_000  # rows of ended windows deleted by one purge: a purge stays short, the next one goes on


def RATE_LIMIT(route_class: str) -> dict[str, Any]:
    """`opt=` of a route of that class, e.g. `@post(..., opt=RATE_LIMIT("mail"))`."""
    if route_class not in CLASSES:
        raise ValueError(f"unknown rate-limit class {route_class!r}")
    return {"rate_limit": route_class}


@dataclass(frozen=True)
class Rate:
    """`count` requests per window of `seconds`."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, value: object) -> object:
        """`"10/60"` as Rate(10, 60); anything else is left to pydantic (which refuses what is not a Rate)."""
        if not isinstance(value, str):
            return value
        count, slash, seconds = value.partition("/")
        if not slash or not count.strip().isdigit() or not seconds.strip().isdigit():
            raise ValueError("a rate is written count/seconds, e.g. 10/60")
        rate = cls(int(count), int(seconds))
        if rate.count < 1 or rate.seconds < 1:
            raise ValueError("a rate's count and seconds are 1 or more")
        return rate


Key = tuple[str, str, int]  # (route class, client, window start in epoch seconds)


@dataclass
class _Count:
    shared: int = 0  # the store's total when last heard (this process's flushed counts included)
    pending: int = 0  # admitted here and not yet added to the store
    refreshes: int = 0  # flushes that still ask for the total after this process last sent counts


class RateLimiter:
    def __init__(self, rates: Mapping[str, Rate], store: Store, clock: Callable[[], float] = time.time) -> None:
        """`clock`: wall-clock seconds, the same on every replica (windows are aligned on the epoch)."""
        self.rates = dict(rates)
        self.store = store
        self.clock = clock
        self._counts: dict[Key, _Count] = {}

    async def admit(self, route_class: str, client: str) -> None:
        """Count one request of `client` in `route_class`; ProblemError 429 past the limit."""
        rate = self.rates[route_class]
        now = self.clock()
        start = int(now // rate.seconds) * rate.seconds
        key = (route_class, client, start)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count()
        if route_class in EXACT and self.store.available:
            try:
                total = await self._add_one(key, start + rate.seconds)
            except Exception as exc:
                self.store.failed("rate limit", exc)  # counted in the process below, sent on the next flush
            else:
                self.store.recovered()
                count.shared = total
                if total > rate.count:
                    raise rate_limited(start + rate.seconds - now)
                return
        if count.shared + count.pending >= rate.count:
            raise rate_limited(start + rate.seconds - now)
        count.pending += 1

    async def flush(self) -> None:
        """Add this process's new counts to the shared ones (one statement) and learn the totals back; forget the
        windows that ended. Meant to run every `flush_seconds` (gateway.store.Store.run)."""
        now = self.clock()
        self._counts = {key: c for key, c in self._counts.items() if key[2] + self.rates[key[0]].seconds > now}
        sent = sorted((key, c.pending) for key, c in self._counts.items() if c.pending or c.refreshes)
        if not sent or not self.store.migrated:
            return
        # Sorted: two replicas upserting the same rows take their locks in one order, never a deadlock.
        statement = text(
            "INSERT INTO rate_limit_counters (bucket, window_start, window_end, hits) "
            "SELECT * FROM unnest(CAST(:buckets AS text[]), CAST(:starts AS bigint[]), CAST(:ends AS bigint[]), "
            "CAST(:hits AS integer[])) "
            "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits "
            "RETURNING bucket, window_start, hits"
        )
        values = {
            "buckets": [_bucket(key) for key, _ in sent],
            "starts": [key[2] for key, _ in sent],
            "ends": [key[2] + self.rates[key[0]].seconds for key, _ in sent],
            "hits": [hits for _, hits in sent],
        }
        async with self.store.db.engine.begin() as conn:
            totals = {(bucket, start): hits for bucket, start, hits in await conn.execute(statement, values)}
        self.store.recovered()
        for key, hits in sent:  # admissions made meanwhile stay pending, for the next flush
            count = self._counts.get(key)
            if count is not None:
                count.pending -= hits
                count.shared = totals[(_bucket(key), key[2])]
                count.refreshes = REFRESHES if hits else count.refreshes - 1

    async def purge(self) -> None:
        """Delete the counters of windows that ended (at most PURGE_BATCH rows a run)."""
        if not self.store.migrated:
            return
        statement = text(
            "DELETE FROM rate_limit_counters WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM rate_limit_counters WHERE window_end < :now LIMIT :batch))"
        )
        async with self.store.db.engine.begin() as conn:
            await conn.execute(statement, {"now": int(self.clock()), "batch": PURGE_BATCH})
        self.store.recovered()

    async def _add_one(self, key: Key, end: int) -> int:
        statement = text(
            "INSERT INTO rate_limit_counters (bucket, window_start, window_end, hits) "
            "VALUES (:bucket, :start, :end, 1) "
            "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1 RETURNING hits"
        )
        async with self.store.db.engine.begin() as conn:
            total: int = (
                await conn.execute(statement, {"bucket": _bucket(key), "start": key[2], "end": end})
            ).scalar_one()
        return total

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Counts the requests of routes that need no identity, per client address, before anything else runs (a
        refusal raised here is answered by the app's exception handlers, as a problem)."""

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            handler = scope.get("route_handler")
            if isinstance(handler, HTTPRouteHandler) and not _needs_identity(handler):  # an HTTP request, then
                route_class = route_class_of(handler, cast("HTTPScope", scope)["method"], scope["path"])
                if route_class is not None:
                    await self.admit(route_class, f"ip:{client_address(Request(scope))}")
            await app(scope, receive, send)

        return middleware


def route_class_of(handler: HTTPRouteHandler, method: str, path: str) -> str | None:
    named: str | None = handler.opt.get("rate_limit")
    if named is not None or not path.startswith("/api/"):
        return named
    return "read" if method in READ_METHODS else "write"


def _needs_identity(handler: HTTPRouteHandler) -> bool:
    return "identity" in handler.parsed_fn_signature.parameters


def _bucket(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def client_of(identity: Mapping[str, Any]) -> str:
    """The authenticated client: the API token when one acts, else the user."""
    if token_id := identity.get("token_id"):
        return f"token:{token_id}"
    return f"user:{identity['user_id']}"


def rate_limited(seconds: float) -> ProblemError:
    wait = max(1, math.ceil(seconds))
    refusal = ProblemError(
        429, "rate_limited", "Too many requests", f"Too many requests; try again in {wait} s.", retry_after=wait
    )
    refusal.headers = {"Retry-After": str(wait)}
    return refusal


async def limited_identity(
    request: Request[Any, Any, Any], authenticated: dict[str, Any], limiter: RateLimiter
) -> dict[str, Any]:
    """The `identity` dependency of the routes: the caller's identity (`authenticated`: gateway.sessions), once
    their request is counted in its route's class."""
    handler = request.route_handler
    route_class = (
        route_class_of(handler, request.method, request.url.path) if isinstance(handler, HTTPRouteHandler) else None
    )
    if route_class is not None:
        await limiter.admit(route_class, client_of(authenticated))
    return authenticated
