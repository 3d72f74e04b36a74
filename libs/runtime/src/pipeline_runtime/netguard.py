"""Outbound address guard: refuse connections to non-public addresses unless allowlisted."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "AddressGuard",
    "AddressRefused",
    "GuardedResolver",
    "check_url_host",
    "guarded_connector",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """An outbound connection target was refused by the address guard.

    This is deliberately *not* an ``OSError``: aiohttp wraps ``OSError`` raised by a
    resolver into ``ClientConnectorDNSError`` (which callers usually treat as a transient
    network failure), whereas any other exception propagates unchanged out of
    ``session.get(...)``. Callers can therefore simply ``except AddressRefused``.
    """

    def __init__(self, address: str, reason: str, *, host: str | None = None) -> None:
        self.address = address
        self.reason = reason
        self.host = host if host is not None else address
        prefix = f"host {self.host!r} resolved to " if self.host != address else ""
        super().__init__(f"{prefix}address {address} is {reason}")


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), label) for cidr, label in pairs)


# Every IPv4 range that is not globally routable unicast (IANA special-purpose registry).
_BLOCKED_V4 = _nets(
    ("0.0.0.0/8", "unspecified/this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)

# IPv6 ranges blocked even though they lie in (or next to) global unicast space.
# Ranges that embed an IPv4 address (mapped, NAT64 well-known prefix, 6to4) are
# unwrapped before this table is consulted.
_BLOCKED_V6 = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 SIDs"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64_WKP = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


def _parse_address(address: str) -> IPAddress | None:
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _blocked_reason_v4(ip: ipaddress.IPv4Address) -> str | None:
    for net, label in _BLOCKED_V4:
        if ip in net:
            return f"in a blocked range ({label})"
    if not ip.is_global:
        return "in a blocked range (not globally routable)"
    return None


def _blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or ``None`` when it is public."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _blocked_reason_v4(ip)
    embedded: ipaddress.IPv4Address | None = None
    kind = ""
    if ip.ipv4_mapped is not None:
        embedded, kind = ip.ipv4_mapped, "IPv4-mapped"
    elif ip in _NAT64_WKP:
        embedded, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    elif ip in _SIXTOFOUR:
        embedded, kind = ip.sixtofour, "6to4"
    if embedded is not None:
        inner = _blocked_reason_v4(embedded)
        return f"{kind} (embedded IPv4 {embedded} is {inner})" if inner else None
    for net, label in _BLOCKED_V6:
        if ip in net:
            return f"in a blocked range ({label})"
    if ip not in _GLOBAL_UNICAST_V6:
        return "in a blocked range (not global unicast)"
    if not ip.is_global:
        return "in a blocked range (not globally routable)"
    return None


@dataclass(frozen=True)
class AddressGuard:
    """Allows public addresses, plus anything inside ``allowlist``; refuses the rest."""

    allowlist: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_setting(cls, value: str) -> AddressGuard:
        """Parse a comma-separated list of CIDRs (``""`` means an empty allowlist)."""
        networks: list[IPNetwork] = []
        for raw in value.split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"invalid CIDR {item!r} in address allowlist: {exc} "
                    "(expected e.g. '127.0.0.1/32' or 'fd00::/8')"
                ) from exc
        return cls(allowlist=tuple(networks))

    def _in_allowlist(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                candidates.append(ip.ipv4_mapped)
        return any(
            cand.version == net.version and cand in net for cand in candidates for net in self.allowlist
        )

    def refusal_reason(self, address: str) -> str | None:
        """Why ``address`` would be refused, or ``None`` if it is allowed."""
        ip = _parse_address(address)
        if ip is None:
            return "not a valid IP address"
        if self._in_allowlist(ip):
            return None
        return _blocked_reason(ip)

    def check(self, address: str, *, host: str | None = None) -> None:
        """Raise :class:`AddressRefused` unless ``address`` may be connected to."""
        reason = self.refusal_reason(address)
        if reason is not None:
            raise AddressRefused(address, reason, host=host)

    def is_allowed(self, address: str) -> bool:
        return self.refusal_reason(address) is None


def _looks_like_ip_literal(host: str) -> bool:
    # Mirrors aiohttp's heuristic: such hosts never reach the resolver.
    return ":" in host or host.replace(".", "").isdigit()


def check_url_host(url: str | URL, guard: AddressGuard) -> None:
    """Check a URL whose host is an IP literal; hostnames are left to :class:`GuardedResolver`.

    aiohttp (verified for 3.14) connects to IP-literal hosts directly without calling the
    resolver, so callers must run this before every request (including each redirect hop).
    Numeric hosts that are not canonical IP literals (``127.1``, ``2130706433``) are refused.
    """
    parsed = url if isinstance(url, URL) else URL(url)
    host = parsed.raw_host
    if not host:
        return
    ip = _parse_address(host)
    if ip is not None:
        guard.check(str(ip), host=host)
    elif _looks_like_ip_literal(host):
        raise AddressRefused(host, "not a canonical IP literal", host=host)


class GuardedResolver(AbstractResolver):
    """Resolver that drops every address the guard refuses.

    aiohttp connects to exactly the addresses returned here, so filtering at this point
    also defeats DNS rebinding. When nothing survives, :class:`AddressRefused` is raised;
    aiohttp lets it propagate unwrapped out of the request call.
    """

    def __init__(self, guard: AddressGuard, resolver: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family=family)
        allowed: list[ResolveResult] = []
        first_refusal: AddressRefused | None = None
        for result in results:
            reason = self._guard.refusal_reason(result["host"])
            if reason is None:
                allowed.append(result)
            elif first_refusal is None:
                first_refusal = AddressRefused(result["host"], reason, host=host)
        if allowed:
            return allowed
        if first_refusal is not None:
            raise first_refusal
        raise OSError(f"no addresses found for host {host!r}")

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_connector(guard: AddressGuard, **kwargs: Any) -> aiohttp.TCPConnector:
    """A ``TCPConnector`` whose name resolution goes through :class:`GuardedResolver`.

    An explicit ``resolver=`` keyword is wrapped rather than replaced. Must be called while
    an event loop is running (aiohttp requirement). IP-literal hosts bypass the resolver,
    so pair this with :func:`check_url_host` before each request.
    """
    inner = kwargs.pop("resolver", None)
    return aiohttp.TCPConnector(resolver=GuardedResolver(guard, inner), **kwargs)
