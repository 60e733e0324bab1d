"""The client's address: computed here once, for every per-source limit (log-in, password reset, verification
link, sign-up) and for the source a session records.

The address is the TCP peer's, unless the peer is one of the proxies we trust (GATEWAY_TRUSTED_PROXIES, IPs or
CIDR networks; none by default). Then X-Forwarded-For is read from the right (each proxy appends the address it
saw) and the first address that is not a trusted proxy is the client's. A client may write anything in
X-Forwarded-For; only what our own proxies appended to it is believed, and an entry that is not an IP address
ends the walk at the last address vouched for. The result is always a valid, normalised IP address."""

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from litestar import Request

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "0.0.0.0"  # the source of a request without a usable peer address


def parse_address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`entries` (IPs or CIDR networks) as networks; a ValueError names a wrong one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def source_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address, from the peer's address and the X-Forwarded-For header values (in order)."""
    address = parse_address(peer) if peer else None
    if address is None:
        return UNKNOWN
    if not _is_trusted(address, trusted):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        forwarded = parse_address(hop)
        if forwarded is None:
            break
        address = forwarded
        if not _is_trusted(address, trusted):
            break
    return str(address)


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address for this request (see the module's description); the trusted proxies are the
    app's `trusted_proxies` state, set from the gateway's settings."""
    trusted: Sequence[Network] = request.app.state.get("trusted_proxies", ())
    peer = request.client.host if request.client else None
    return source_address(peer, request.headers.getall("x-forwarded-for", []), trusted)
