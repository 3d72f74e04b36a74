"""Tests for the outbound address guard. Only loopback is ever contacted."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from pipeline_runtime.netguard import (
    AddressGuard,
    AddressRefused,
    GuardedResolver,
    check_url_host,
    guarded_connector,
)

ONLY_127_0_0_1 = AddressGuard.from_setting("127.0.0.1/32")
NO_ALLOWLIST = AddressGuard()


# --- helpers -------------------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Maps host names to fixed address lists; never touches DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=addr,
                port=port,
                family=socket.AF_INET6 if ":" in addr else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for addr in self.table.get(host, [])
        ]

    async def close(self) -> None:
        self.closed = True


@contextlib.asynccontextmanager
async def loopback_server(host: str = "127.0.0.1") -> AsyncIterator[tuple[int, list[int]]]:
    """An aiohttp server on ``host`` (loopback only) and an ephemeral port; yields (port, hits)."""
    assert host.startswith("127."), "tests must only bind loopback addresses"
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(body=b"hello")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


# --- is_allowed over address ranges (plain values, no connections) -------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "::1",
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.10",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2001:db8::1",
        "3fff::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:a00:1::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "100::1",
        "not-an-ip",
        "",
    ],
)
def test_non_public_addresses_are_refused_without_an_allowlist(address: str) -> None:
    assert NO_ALLOWLIST.is_allowed(address) is False
    with pytest.raises(AddressRefused):
        NO_ALLOWLIST.check(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert NO_ALLOWLIST.is_allowed(address) is True
    NO_ALLOWLIST.check(address)


def test_an_allowlisted_loopback_address_is_allowed_but_its_neighbour_is_not() -> None:
    assert ONLY_127_0_0_1.is_allowed("127.0.0.1") is True
    assert ONLY_127_0_0_1.is_allowed("127.0.0.2") is False


def test_an_ipv4_mapped_form_of_an_allowlisted_address_is_allowed() -> None:
    assert ONLY_127_0_0_1.is_allowed("::ffff:127.0.0.1") is True
    assert ONLY_127_0_0_1.is_allowed("::ffff:127.0.0.2") is False


def test_an_ipv6_allowlist_entry_allows_addresses_inside_it() -> None:
    guard = AddressGuard.from_setting("fd00::/8, ::1/128")
    assert guard.is_allowed("fd00::5") is True
    assert guard.is_allowed("::1") is True
    assert guard.is_allowed("fc00::5") is False


def test_the_refusal_names_the_address_and_the_blocked_range() -> None:
    with pytest.raises(AddressRefused) as info:
        ONLY_127_0_0_1.check("127.0.0.2")
    assert info.value.address == "127.0.0.2"
    assert info.value.host == "127.0.0.2"
    assert str(info.value) == "address 127.0.0.2 is in a blocked range (loopback)"


def test_the_refusal_of_a_mapped_address_names_the_embedded_ipv4_range() -> None:
    with pytest.raises(AddressRefused, match=r"embedded IPv4 10\.0\.0\.1 .*private"):
        NO_ALLOWLIST.check("::ffff:10.0.0.1")


def test_the_refusal_mentions_the_host_name_when_one_is_given() -> None:
    with pytest.raises(AddressRefused) as info:
        NO_ALLOWLIST.check("10.1.2.3", host="intranet.example")
    assert info.value.host == "intranet.example"
    assert "intranet.example" in str(info.value)
    assert "private" in str(info.value)


# --- from_setting ----------------------------------------------------------------------


def test_an_empty_setting_gives_an_empty_allowlist() -> None:
    assert AddressGuard.from_setting("").allowlist == ()
    assert AddressGuard.from_setting(" , ").allowlist == ()


def test_a_comma_separated_setting_parses_every_cidr() -> None:
    guard = AddressGuard.from_setting(" 127.0.0.1/32 ,10.0.0.0/8,fd00::/8,192.168.1.5")
    assert [str(n) for n in guard.allowlist] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "fd00::/8",
        "192.168.1.5/32",
    ]


@pytest.mark.parametrize("value", ["not-a-cidr", "10.0.0.0/33", "127.0.0.1/32,bogus", "10.0.0.1/8"])
def test_an_invalid_cidr_is_rejected_with_a_clear_message(value: str) -> None:
    with pytest.raises(ValueError, match="invalid CIDR .* in address allowlist"):
        AddressGuard.from_setting(value)


# --- check_url_host (plain values, no connections) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/x",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.2]/",
        "http://10.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://127.0.0.1./",
    ],
)
def test_a_url_with_a_refused_ip_literal_host_is_refused(url: str) -> None:
    with pytest.raises(AddressRefused):
        check_url_host(url, ONLY_127_0_0_1)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1234/", "https://8.8.8.8/", "http://localhost/", "http://a.test/"]
)
def test_a_url_with_an_allowed_literal_or_a_host_name_passes_the_literal_check(url: str) -> None:
    check_url_host(url, ONLY_127_0_0_1)


# --- GuardedResolver -------------------------------------------------------------------


async def test_the_resolver_drops_blocked_addresses_and_keeps_allowed_ones() -> None:
    inner = FakeResolver({"mixed.test": ["127.0.0.2", "127.0.0.1", "::1"]})
    resolver = GuardedResolver(ONLY_127_0_0_1, inner)
    results = await resolver.resolve("mixed.test", 80, family=socket.AF_UNSPEC)
    assert [r["host"] for r in results] == ["127.0.0.1"]


async def test_the_resolver_refuses_a_name_whose_addresses_are_all_blocked() -> None:
    resolver = GuardedResolver(ONLY_127_0_0_1, FakeResolver({"rebind.test": ["127.0.0.2"]}))
    with pytest.raises(AddressRefused) as info:
        await resolver.resolve("rebind.test", 80)
    assert info.value.host == "rebind.test"
    assert info.value.address == "127.0.0.2"


async def test_the_resolver_reports_a_name_without_addresses_as_an_os_error() -> None:
    resolver = GuardedResolver(ONLY_127_0_0_1, FakeResolver({}))
    with pytest.raises(OSError, match="no addresses"):
        await resolver.resolve("nothing.test", 80)


async def test_closing_the_resolver_closes_the_wrapped_resolver() -> None:
    inner = FakeResolver({})
    await GuardedResolver(NO_ALLOWLIST, inner).close()
    assert inner.closed is True


async def test_the_default_resolver_resolves_localhost_through_the_guard() -> None:
    results = await GuardedResolver(ONLY_127_0_0_1).resolve("localhost", 80, socket.AF_UNSPEC)
    assert {r["host"] for r in results} == {"127.0.0.1"}


# --- behaviour of aiohttp itself, relied on by the guard -----------------------------


async def test_aiohttp_connects_to_ip_literal_hosts_without_calling_the_resolver() -> None:
    recording = FakeResolver({})
    async with (
        loopback_server() as (port, hits),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=recording)) as session,
        session.get(f"http://127.0.0.1:{port}/") as resp,
    ):
        assert await resp.read() == b"hello"
    assert recording.calls == []
    assert hits == [1]


async def test_a_guarded_connector_lets_address_refused_propagate_unwrapped() -> None:
    async with (
        loopback_server("127.0.0.2") as (port, hits),
        aiohttp.ClientSession(
            connector=guarded_connector(ONLY_127_0_0_1, resolver=FakeResolver({"rebind.test": ["127.0.0.2"]}))
        ) as session,
    ):
        with pytest.raises(AddressRefused):
            async with session.get(f"http://rebind.test:{port}/"):
                pass
    assert hits == []


async def test_a_guarded_connector_connects_to_an_allowed_resolved_address() -> None:
    async with (
        loopback_server() as (port, hits),
        aiohttp.ClientSession(
            connector=guarded_connector(
                ONLY_127_0_0_1, resolver=FakeResolver({"ok.test": ["127.0.0.2", "127.0.0.1"]})
            )
        ) as session,
        session.get(f"http://ok.test:{port}/") as resp,
    ):
        assert await resp.read() == b"hello"
    assert hits == [1]
