"""Which hosts and IP addresses an outbound request may reach (the SSRF rules, no DNS here).

An address is *public* when it is globally routable unicast: loopback, private, link-local (cloud metadata
at 169.254.169.254), carrier-grade NAT, multicast, unspecified, reserved and documentation ranges are not.
IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the IPv4 address inside.

A host written as an address is recognised in every form a resolver accepts: dotted quad, the shorthand
and numeric forms ``inet_aton`` takes (``127.1``, ``2130706433``, ``0x7f.0.0.1``, ``0177.0.0.1``), IPv6
with or without brackets and zone id. Names the resolver answers locally (``localhost``, ``*.localhost``,
``*.local``, ``*.internal``) count as private without a lookup.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


def normalise_host(host: str) -> str:
    """``host`` lower-cased, without brackets, an IPv6 zone id or trailing dots."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.split("%", 1)[0].rstrip(".")


def host_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a resolver would accept, or None for a name."""
    host = normalise_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(address: IPAddress | str) -> bool:
    """Whether a request may go to ``address`` without the operator allowing its host."""
    if isinstance(address, str):
        literal = host_literal(address)
        if literal is None:
            return False
        address = literal
    inner = embedded_ipv4(address)
    if inner is not None:
        return address_is_public(inner)
    return address.is_global and not address.is_multicast


def host_is_local_name(host: str) -> bool:
    """Whether ``host`` is a name that always means this machine or its private network."""
    host = normalise_host(host)
    return host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES)


def host_refusal(host: str) -> str | None:
    """Why ``host`` may not be called as it is written (a private literal or a local name), or None.
    A public-looking name can still resolve to a private address: that is checked at connect time."""
    if not normalise_host(host):
        return "has no host"
    literal = host_literal(host)
    if literal is not None:
        return None if address_is_public(literal) else f"host '{host}' is not a public address"
    if host_is_local_name(host):
        return f"host '{host}' is not a public address"
    return None


def url_refusal(url: str, allowed_hosts: frozenset[str] = frozenset()) -> str | None:
    """Why ``url`` may not be called, judged without DNS, or None. ``allowed_hosts`` (normalised): hosts
    the operator allows, which may also be private and use plain ``http``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "must be an absolute URL with a host"
    if normalise_host(host) in allowed_hosts:
        return None if parts.scheme in ("http", "https") else "must use https (or http for an allowed host)"
    if parts.scheme != "https":
        return "must use https"
    return host_refusal(host)
