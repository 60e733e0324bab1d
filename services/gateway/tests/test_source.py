"""The client's address (gateway.source): X-Forwarded-For believed only from trusted proxies."""

import ipaddress

import httpx
import pytest
from litestar import Litestar, Request, get
from litestar.datastructures import State

from gateway.settings import GatewaySettings
from gateway.source import UNKNOWN, client_address, parse_networks, source_address

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # no trusted proxy in front: X-Forwarded-For is the client's own text, ignored
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        ("127.0.0.1", ["<script>alert(1)</script>"], "127.0.0.1"),
        ("127.0.0.1", ["x" * 5000], "127.0.0.1"),
        # behind a trusted proxy: the right-most address that is not a proxy of ours
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),  # 1.2.3.4: whatever the client claimed
        ("10.1.2.3", ["1.2.3.4, 198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # through two proxies of ours
        ("10.1.2.3", ["1.2.3.4", "198.51.100.1, 192.0.2.7"], "198.51.100.1"),  # several header lines
        ("10.1.2.3", [], "10.1.2.3"),  # the proxy forwarded nothing: it is the source
        ("10.1.2.3", ["10.4.4.4"], "10.4.4.4"),  # only proxies: the farthest one
        ("10.1.2.3", ["<script>, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1, <script>"], "10.1.2.3"),  # a non-address ends the walk
        ("10.1.2.3", ["  198.51.100.1  "], "198.51.100.1"),
        ("2001:db8::1", ["2001:DB8:0:0:0:0:0:1, 2a01:e0a::7"], "2a01:e0a::7"),  # normalised
        ("::ffff:10.1.2.3", ["::ffff:198.51.100.1"], "198.51.100.1"),  # IPv4-mapped: the IPv4 address
        # no usable peer (a test client, a UNIX socket)
        (None, ["198.51.100.1"], UNKNOWN),
        ("testclient", ["198.51.100.1"], UNKNOWN),
    ],
)
def test_source_address(peer, forwarded, expected):
    assert source_address(peer, forwarded, PROXIES) == expected
    ipaddress.ip_address(expected)  # always an address


def test_no_proxy_is_trusted_by_default():
    assert source_address("10.1.2.3", ["198.51.100.1"], GatewaySettings().trusted_proxies) == "10.1.2.3"


def test_trusted_proxies_are_read_from_a_comma_separated_setting(monkeypatch):
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
    assert GatewaySettings().trusted_proxies == PROXIES
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "")
    assert GatewaySettings().trusted_proxies == ()
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "not-a-network")
    with pytest.raises(ValueError, match="not-a-network"):
        GatewaySettings()


@pytest.mark.parametrize(
    ("peer", "expected"), [("10.1.2.3", "198.51.100.1"), ("203.0.113.5", "203.0.113.5"), ("testclient", UNKNOWN)]
)
async def test_client_address_reads_the_peer_and_the_apps_trusted_proxies(peer, expected):
    @get("/source", sync_to_thread=False)
    def source(request: Request) -> str:  # type: ignore[type-arg]
        return client_address(request)

    app = Litestar([source], state=State({"trusted_proxies": PROXIES}))
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/source", headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.1"})
    assert response.text == expected
