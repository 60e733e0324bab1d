"""A service keeps an idle connection open longer than its callers keep it in their pools.

httpx keeps an idle connection 5 s; had the service closed it after uvicorn's default 5 s too, a caller could send
its next request just as the server closed the connection, and that request failed ("Server disconnected without
sending a response": the gateway answered 503 upstream_unavailable, seen once in CI)."""

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.infra

REQUEST = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(REQUEST)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(int(h.split(b":")[1]) for h in headers.split(b"\r\n") if h.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return line


async def test_an_idle_connection_outlives_an_httpx_pool_keep_alive(system):
    address = urlsplit(system.url("accounts"))
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        assert (await status_line(reader, writer)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(httpx.Limits().keepalive_expiry + 1)
        assert (await status_line(reader, writer)).startswith(b"HTTP/1.1 200"), "the service closed the connection"
    finally:
        writer.close()
