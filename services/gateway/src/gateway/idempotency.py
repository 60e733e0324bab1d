"""`Idempotency-Key` on the routes that create something: a client that did not hear the answer sends the same
request again with the same key, and gets the first answer instead of a second creation.

A route opts in by spreading IDEMPOTENT into its decorator (`@post(..., **IDEMPOTENT)`): its OpenAPI operation
is then an IdempotentOperation, which documents the header, and that is what the middleware below looks for: the
document and the behaviour cannot disagree. The header
is optional; without it, the request runs as usual.

With it:
- The key is 1 to 255 printable ASCII characters (else 400 `invalid_idempotency_key`), and belongs to the client
  that sent it: the credential of `Authorization` (a session or an API token), or, with none, the client's
  address (gateway.source). Only a sha256 of that scope is stored, never the credential; two clients never see
  each other's answers, whatever keys they choose.
- The request's fingerprint is the sha256 of its method, path (with query) and body. The same key with another
  fingerprint is refused (422 `idempotency_key_reused`); while the first request runs, the same key gets 409
  `idempotency_key_in_use` (with Retry-After): the answer is not known yet.
- The first answer (status, body, Content-Type, Location, Content-Disposition) is stored in the gateway's store
  before its last byte is sent, and replayed for TTL (24 h) with `Idempotency-Replayed: true`. Not stored, so
  that the request can be sent again with the same key: 5xx answers, 401 (no valid credential) and 429 (throttled),
  which say the request did not run or not to its end, and answers above MAX_STORED_BODY.
- A claim whose request never finished (a gateway that died under it) is taken over, by the same request only,
  once LEASE has passed.
- Store down: a request carrying a key is refused with 503 `idempotency_unavailable`: running it without the
  guarantee the client asked for could create twice.
- Expired keys are deleted by `purge` (a bounded batch a run, gateway.store.Store.run).
"""

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from litestar import Request, Response
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIResponse, Operation, Parameter, Schema
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from sqlalchemy import text

from gateway.source import client_address
from gateway.store import Store
from servicekit.http import ProblemError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
TTL = timedelta(hours=24)
LEASE = timedelta(seconds=60)  # longer than any request runs (upstream calls time out after 10 s by default)
MAX_STORED_BODY = 1024 * 1024
KEPT_HEADERS = ("content-type", "location", "content-disposition")
NOT_STORED = frozenset({401, 429})
PURGE_BATCH = 1_000
_KEY = re.compile(r"[\x20-\x7e]{1,255}")
IDEMPOTENCY_PROBLEMS = {
    "409": "In conflict with the current state, or a request with this Idempotency-Key is still running "
    "(`idempotency_key_in_use`)",
    "422": "This Idempotency-Key came with another request (`idempotency_key_reused`)",
}


@dataclass
class IdempotentOperation(Operation):
    """The OpenAPI operation of an idempotent route: documents the optional Idempotency-Key header."""

    def __post_init__(self) -> None:
        header = Parameter(
            name=HEADER,
            param_in=ParamType.HEADER,
            required=False,
            description="Any unique string (a UUID) of 1 to 255 printable ASCII characters: sending the request "
            "again with the same key within 24 h replays the first answer (header `Idempotency-Replayed: true`) "
            "instead of creating twice. Another request with the same key is refused (422).",
            schema=Schema(type="string", min_length=1, max_length=255),  # type: ignore[arg-type]
        )
        self.parameters = [*(self.parameters or []), header]
        # its refusals are problem details like every route's 400 (gateway.openapi.problems)
        problem = (self.responses or {}).get("400")
        if isinstance(problem, OpenAPIResponse):
            for status, description in IDEMPOTENCY_PROBLEMS.items():
                self.responses.setdefault(status, replace(problem, description=description))  # type: ignore[union-attr]


IDEMPOTENT: dict[str, Any] = {"operation_class": IdempotentOperation}
"""Spread into the decorator of a route that creates something: `@post("/", ..., **IDEMPOTENT)`."""


@dataclass
class _Stored:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Claim:
    client: str
    key: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)


class Idempotency:
    def __init__(self, store: Store) -> None:
        self.store = store

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            handler = scope.get("route_handler")
            if not isinstance(handler, HTTPRouteHandler) or not is_idempotent(handler):
                await app(scope, receive, send)
                return
            keys = [value for name, value in scope["headers"] if name == b"idempotency-key"]
            if not keys:
                await app(scope, receive, send)
                return
            request: Request[Any, Any, Any] = Request(scope)
            key = _checked_key(keys)
            body, receive = await _buffered(receive, handler.resolve_request_max_body_size())
            if body is None:  # over the route's limit: Litestar refuses it (413), nothing to keep
                await app(scope, receive, send)
                return
            claim = _Claim(_scope_of(request), key)
            stored = await self._claim(claim, _fingerprint(request.method, scope, body))
            if stored is not None:
                headers = {**stored.headers, REPLAYED_HEADER: "true"}
                media_type = headers.pop("content-type", "application/json")
                replay = Response(stored.body, status_code=stored.status, headers=headers, media_type=media_type)
                await replay.to_asgi_response(app=None, request=request)(scope, receive, send)
                return
            await self._run(claim, app, scope, receive, send)

        return middleware

    async def _run(self, claim: _Claim, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Runs the request, keeping its answer; the claim is released if the answer is not to be kept."""
        answer: dict[str, Any] = {"status": 0, "headers": {}, "body": []}
        kept = False

        async def keeping(message: Message) -> None:
            nonlocal kept
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in message.get("headers", ())
                    if name.decode("latin-1").lower() in KEPT_HEADERS
                }
            elif message["type"] == "http.response.body":
                answer["body"].append(message.get("body", b""))
                if not message.get("more_body", False) and _keepable(answer["status"], answer["body"]):
                    # stored before the client has the whole answer: once it has, a retry gets the replay
                    stored = _Stored(answer["status"], answer["headers"], b"".join(answer["body"]))
                    kept = await self._complete(claim, stored)
            await send(message)

        try:
            await app(scope, receive, keeping)
        finally:
            if not kept:
                await self._release(claim)

    async def _claim(self, claim: _Claim, fingerprint: str) -> _Stored | None:
        """Take the key for this request (None), or the answer to replay; ProblemError when neither."""
        take = text(
            "INSERT INTO idempotency_keys (client, key, fingerprint, claim, locked_until, expires_at) "
            "VALUES (:client, :key, :fingerprint, :claim, now() + CAST(:lease AS interval), "
            "now() + CAST(:ttl AS interval)) "
            "ON CONFLICT (client, key) DO UPDATE SET fingerprint = excluded.fingerprint, claim = excluded.claim, "
            "locked_until = excluded.locked_until, expires_at = excluded.expires_at, status = NULL, headers = NULL, "
            "body = NULL, created_at = now() "
            "WHERE idempotency_keys.expires_at <= now() OR (idempotency_keys.status IS NULL "
            "AND idempotency_keys.locked_until <= now() AND idempotency_keys.fingerprint = excluded.fingerprint) "
            "RETURNING claim"
        )
        read = text(
            "SELECT fingerprint, status, headers, body FROM idempotency_keys "
            "WHERE client = :client AND key = :key AND expires_at > now()"
        )
        if not self.store.available:
            raise unavailable()
        values = {"client": claim.client, "key": claim.key, "fingerprint": fingerprint, "claim": claim.id}
        for _ in range(3):  # a row seen expired or released between the two statements: try again
            try:
                async with self.store.db.engine.begin() as conn:
                    if (await conn.execute(take, values | {"lease": LEASE, "ttl": TTL})).first() is not None:
                        return None
                    row = (await conn.execute(read, values)).first()
            except Exception as exc:
                self.store.failed("idempotency", exc)
                raise unavailable() from None
            self.store.recovered()
            if row is None:
                continue
            if row.fingerprint != fingerprint:
                raise ProblemError(
                    422,
                    "idempotency_key_reused",
                    "Idempotency key reused",
                    "This Idempotency-Key was sent with another request; use a new key for a new request.",
                )
            if row.status is None:
                refusal = ProblemError(
                    409,
                    "idempotency_key_in_use",
                    "Request in progress",
                    "A request with this Idempotency-Key is still running; try again in a moment.",
                    retry_after=1,
                )
                refusal.headers = {"Retry-After": "1"}
                raise refusal
            return _Stored(row.status, dict(row.headers or {}), bytes(row.body or b""))
        raise unavailable()

    async def _complete(self, claim: _Claim, answer: _Stored) -> bool:
        statement = text(
            "UPDATE idempotency_keys SET status = :status, headers = CAST(:headers AS jsonb), body = :body, "
            "locked_until = NULL WHERE client = :client AND key = :key AND claim = :claim"
        )
        values = {
            "status": answer.status,
            "headers": json.dumps(answer.headers),
            "body": answer.body,
            "client": claim.client,
            "key": claim.key,
            "claim": claim.id,
        }
        return await self._quietly(statement, values)

    async def _release(self, claim: _Claim) -> None:
        statement = text("DELETE FROM idempotency_keys WHERE client = :client AND key = :key AND claim = :claim")
        await self._quietly(statement, {"client": claim.client, "key": claim.key, "claim": claim.id})

    async def _quietly(self, statement: Any, values: dict[str, Any]) -> bool:
        """After the request ran: a failure is logged (the claim then lapses after LEASE), never the client's."""
        try:
            async with self.store.db.engine.begin() as conn:
                await conn.execute(statement, values)
        except Exception as exc:
            self.store.failed("idempotency", exc)
            return False
        self.store.recovered()
        return True

    async def purge(self) -> None:
        """Delete expired keys (at most PURGE_BATCH a run)."""
        if not self.store.migrated:
            return
        statement = text(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT :batch))"
        )
        async with self.store.db.engine.begin() as conn:
            await conn.execute(statement, {"batch": PURGE_BATCH})
        self.store.recovered()


def is_idempotent(handler: HTTPRouteHandler) -> bool:
    return issubclass(handler.operation_class, IdempotentOperation)


def _checked_key(values: list[bytes]) -> str:
    key = values[0].decode("latin-1") if len(values) == 1 else ""
    if not _KEY.fullmatch(key):
        raise ProblemError(
            400,
            "invalid_idempotency_key",
            "Invalid Idempotency-Key",
            "Send one Idempotency-Key of 1 to 255 printable ASCII characters (a UUID, say).",
            field=HEADER,
        )
    return key


def _scope_of(request: Request[Any, Any, Any]) -> str:
    """The sha256 of the client a key belongs to: its credential, or its address when it presents none."""
    credential = request.headers.get("Authorization")
    scope = f"credential:{credential}" if credential else f"address:{client_address(request)}"
    return hashlib.sha256(scope.encode()).hexdigest()


def _fingerprint(method: str, scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256(method.encode())
    for part in (scope.get("raw_path") or scope["path"].encode(), b"?", scope.get("query_string", b""), body):
        digest.update(b"\0" + part)
    return digest.hexdigest()


def _keepable(status: int, body: list[bytes]) -> bool:
    return status < 500 and status not in NOT_STORED and sum(map(len, body)) <= MAX_STORED_BODY


def unavailable() -> ProblemError:
    refusal = ProblemError(
        503,
        "idempotency_unavailable",
        "Service temporarily unavailable",
        "Requests with an Idempotency-Key cannot be served right now; try again later.",
        retry_after=5,
    )
    refusal.headers = {"Retry-After": "5"}
    return refusal


async def _buffered(receive: Receive, limit: int | None) -> tuple[bytes | None, Receive]:
    """The whole body (None past `limit`) and a `receive` that gives the app the same messages again."""
    messages: list[ReceiveMessage] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if limit is not None and size > limit:
            return None, _replaying(messages, receive)
        if not message.get("more_body", False):
            break
    body = b"".join(m["body"] for m in messages if m["type"] == "http.request")
    return body, _replaying(messages, receive)


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Callable[[], Awaitable[ReceiveMessage]]:
    async def again() -> ReceiveMessage:
        return messages.pop(0) if messages else await receive()

    return again
