"""Calls to the services' internal HTTP APIs, carrying the correlation id; their problems pass through."""

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from litestar import Response

from servicekit import context
from servicekit.http import INTERNAL_TOKEN_HEADER, ProblemError


class Upstream:
    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: float,
        internal_token: str | None,
        after_change: Callable[[], None] | None = None,
    ) -> None:
        """`after_change`: called once each call that may change something (not GET or HEAD) has ended, however
        it ended (the gateway forgets the identities it keeps: gateway.identities)."""
        headers = {INTERNAL_TOKEN_HEADER: internal_token} if internal_token else {}
        self.name = name
        self.after_change = after_change
        self._client_options: dict[str, Any] = {"base_url": base_url, "timeout": timeout, "headers": headers}
        self.client = httpx.AsyncClient(**self._client_options)

    def open(self) -> None:
        """A new connection pool if an earlier lifespan of the app closed this one (an app started twice)."""
        if self.client.is_closed:
            self.client = httpx.AsyncClient(**self._client_options)

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        actor: str | None = None,
        content: bytes | None = None,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """`actor`: the authenticated user the call is made for (internal APIs authorise on it). `content`: a
        raw body (of `content_type`) to send instead of `json`. `headers`: more headers, e.g. a credential that
        must not appear in a URL."""
        headers = {**(headers or {}), context.CORRELATION_HEADER: context.current_correlation_id()}
        if (address := context.client_address.get()) is not None:  # for the services' security events
            headers[context.CLIENT_ADDRESS_HEADER] = address
        if actor is not None:
            headers["X-Actor-Id"] = actor
        if content is not None:
            headers["Content-Type"] = content_type
        try:
            return await self.client.request(method, path, json=json, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ProblemError(
                503, "upstream_unavailable", "Service temporarily unavailable", f"{self.name} did not answer"
            ) from exc
        finally:
            if self.after_change is not None and method not in ("GET", "HEAD"):
                self.after_change()

    async def ping(self) -> None:
        (await self.client.get("/health/live")).raise_for_status()

    async def close(self) -> None:
        await self.client.aclose()


def _without_internal_instance(response: httpx.Response) -> bytes:
    """A problem's `instance` names the internal URL that answered (with ids of the caller's identity): drop it."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return response.content
    problem = response.json()
    if not isinstance(problem, dict) or "instance" not in problem:
        return response.content
    del problem["instance"]
    return json.dumps(problem, ensure_ascii=False).encode()


def relay(response: httpx.Response, headers: Iterable[str] = ("Retry-After",)) -> Response[Any]:
    """The upstream answer as ours: body (JSON, problem details, a file or nothing), status and content type,
    and the upstream `headers` named (by default Retry-After, which every throttled answer carries)."""
    if response.status_code >= 500:
        raise ProblemError(502, "upstream_error", "Service error", "An internal service failed; try again later.")
    return Response(
        _without_internal_instance(response),
        status_code=response.status_code,
        media_type=response.headers.get("content-type", "application/json"),
        headers={name: response.headers[name] for name in headers if name in response.headers},
    )
