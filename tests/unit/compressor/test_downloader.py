"""Tests for the compressor's downloader against real aiohttp servers on loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientSession, ClientTimeout, web
from aiohttp.abc import AbstractResolver, ResolveResult
from compressor.downloader import (
    AiohttpDownloader,
    DownloadError,
    DownloadLimits,
    create_session,
    parse_retry_after,
)
from pipeline_runtime.netguard import AddressGuard, guarded_connector

ONLY_127_0_0_1 = AddressGuard.from_setting("127.0.0.1/32")
FAST = DownloadLimits(connect_timeout=0.5, total_timeout=2.0, max_bytes=64 * 1024, max_redirects=5)


# --- helpers -------------------------------------------------------------------------


@dataclass
class Server:
    host: str
    port: int
    hits: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def serve(
    routes: Callable[[web.Application, Server], None], host: str = "127.0.0.1"
) -> AsyncIterator[Server]:
    """Run an aiohttp app on ``host`` (loopback only) with an ephemeral port; count every hit."""
    assert host.startswith("127."), "tests must only bind loopback addresses"
    app = web.Application()
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
    server = Server(host, 0)

    @web.middleware
    async def count_hits(request: web.Request, handler):  # type: ignore[no-untyped-def]
        server.hits.append(request.path)
        return await handler(request)

    app.middlewares.append(count_hits)
    routes(app, server)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


def image_routes(app: web.Application, server: Server) -> None:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG fake image bytes", content_type="image/png")

    app.router.add_get("/img.png", image)


@contextlib.asynccontextmanager
async def downloader(
    guard: AddressGuard = ONLY_127_0_0_1, limits: DownloadLimits = FAST
) -> AsyncIterator[AiohttpDownloader]:
    async with create_session(guard, limits) as session:
        yield AiohttpDownloader(session, guard, limits)


async def fetch_error(dl: AiohttpDownloader, url: str) -> DownloadError:
    with pytest.raises(DownloadError) as info:
        await dl.fetch(url)
    return info.value


class FakeResolver(AbstractResolver):
    """Maps host names to fixed addresses; never touches DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.table.get(host, [])
        ]

    async def close(self) -> None:
        return None


# --- success -------------------------------------------------------------------------


async def test_an_image_on_an_allowed_address_is_downloaded() -> None:
    async with serve(image_routes) as srv, downloader() as dl:
        assert await dl.fetch(srv.url("/img.png")) == b"\x89PNG fake image bytes"
    assert srv.hits == ["/img.png"]


async def test_a_cookie_an_image_host_sets_is_never_sent_back_with_a_later_download() -> None:
    def routes(app: web.Application, server: Server) -> None:
        async def image(request: web.Request) -> web.Response:
            server.state[request.path] = request.headers.get("Cookie", "")
            response = web.Response(body=b"\x89PNG fake image bytes", content_type="image/png")
            response.set_cookie("session", "tenant-a-secret")
            return response

        app.router.add_get("/a.png", image)
        app.router.add_get("/b.png", image)

    async with serve(routes) as srv, downloader() as dl:
        # By name (/etc/hosts): aiohttp's default jar would keep no cookie for an IP address.
        await dl.fetch(f"http://localhost:{srv.port}/a.png")  # one tenant's image
        await dl.fetch(f"http://localhost:{srv.port}/b.png")  # another's, same host, same session
    assert srv.hits == ["/a.png", "/b.png"]
    assert srv.state == {"/a.png": "", "/b.png": ""}


async def test_localhost_is_downloaded_when_127_0_0_1_is_allowlisted() -> None:
    async with serve(image_routes) as srv, downloader(ONLY_127_0_0_1) as dl:
        assert await dl.fetch(f"http://localhost:{srv.port}/img.png") == b"\x89PNG fake image bytes"
    assert srv.hits == ["/img.png"]


async def test_localhost_is_refused_when_nothing_is_allowlisted() -> None:
    async with serve(image_routes) as srv, downloader(AddressGuard()) as dl:
        err = await fetch_error(dl, f"http://localhost:{srv.port}/img.png")
    assert err.code == "address_refused"
    assert err.transient is False
    assert srv.hits == []


# --- address guard ---------------------------------------------------------------------


async def test_a_url_to_a_loopback_address_outside_the_allowlist_is_never_contacted() -> None:
    async with serve(image_routes, host="127.0.0.2") as other, downloader() as dl:
        err = await fetch_error(dl, other.url("/img.png"))
    assert err.code == "address_refused"
    assert err.transient is False
    assert "127.0.0.2" in str(err)
    assert other.hits == []


async def test_a_redirect_to_a_loopback_address_outside_the_allowlist_is_refused() -> None:
    def routes(app: web.Application, server: Server) -> None:
        async def jump(request: web.Request) -> web.Response:
            raise web.HTTPFound(server.state["target"])

        app.router.add_get("/jump", jump)

    async with (
        serve(image_routes, host="127.0.0.2") as other,
        serve(routes) as srv,
        downloader() as dl,
    ):
        srv.state["target"] = other.url("/img.png")
        err = await fetch_error(dl, srv.url("/jump"))
    assert err.code == "address_refused"
    assert srv.hits == ["/jump"]
    assert other.hits == []


async def test_a_host_name_resolving_to_a_refused_address_is_never_contacted() -> None:
    guard = ONLY_127_0_0_1
    async with serve(image_routes, host="127.0.0.2") as other:
        connector = guarded_connector(guard, resolver=FakeResolver({"img.test": ["127.0.0.2"]}))
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=2)) as session:
            dl = AiohttpDownloader(session, guard, FAST)
            err = await fetch_error(dl, f"http://img.test:{other.port}/img.png")
    assert err.code == "address_refused"
    assert other.hits == []


# --- redirects -------------------------------------------------------------------------


def chain_routes(app: web.Application, server: Server) -> None:
    async def hop(request: web.Request) -> web.Response:
        remaining = int(request.match_info["n"])
        if remaining > 0:
            raise web.HTTPFound(f"../hop/{remaining - 1}")  # relative Location
        return web.Response(body=b"end of chain")

    app.router.add_get("/hop/{n}", hop)


async def test_a_chain_of_five_redirects_is_followed_to_the_end() -> None:
    async with serve(chain_routes) as srv, downloader() as dl:
        assert await dl.fetch(srv.url("/hop/5")) == b"end of chain"
    assert srv.hits == [f"/hop/{n}" for n in range(5, -1, -1)]


async def test_a_chain_of_six_redirects_is_too_many() -> None:
    async with serve(chain_routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url("/hop/6"))
    assert err.code == "too_many_redirects"
    assert err.transient is False
    assert srv.hits == [f"/hop/{n}" for n in range(6, 0, -1)]


async def test_a_redirect_to_a_non_http_scheme_is_a_bad_url() -> None:
    def routes(app: web.Application, server: Server) -> None:
        async def jump(request: web.Request) -> web.Response:
            raise web.HTTPFound("ftp://127.0.0.1/img.png")

        app.router.add_get("/jump", jump)

    async with serve(routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url("/jump"))
    assert err.code == "bad_url"
    assert err.transient is False


# --- redirects that hand over credentials or a host name DNS cannot carry ----------------


def jump_routes(app: web.Application, server: Server) -> None:
    async def jump(request: web.Request) -> web.Response:
        raise web.HTTPFound(server.state["target"])

    app.router.add_get("/jump", jump)


def auth_recording_routes(app: web.Application, server: Server) -> None:
    async def image(request: web.Request) -> web.Response:
        server.state["authorization"] = request.headers.get("Authorization", "")
        return web.Response(body=b"\x89PNG fake image bytes", content_type="image/png")

    app.router.add_get("/img.png", image)


async def test_a_redirect_to_a_url_with_credentials_is_a_bad_url_and_never_contacted() -> None:
    async with (
        serve(auth_recording_routes) as target,
        serve(jump_routes) as srv,
        downloader() as dl,
    ):
        srv.state["target"] = f"http://user:pw@127.0.0.1:{target.port}/img.png"
        err = await fetch_error(dl, srv.url("/jump"))
    assert err.code == "bad_url"
    assert err.transient is False
    assert "pw" not in str(err)  # the reason is logged and published: no password in it
    assert srv.hits == ["/jump"]
    assert target.hits == []
    assert "authorization" not in target.state


@pytest.mark.parametrize("userinfo", ["user:pw@", "user@", ":pw@"])
async def test_a_url_with_credentials_is_a_bad_url_and_never_contacted(userinfo: str) -> None:
    async with serve(auth_recording_routes) as target, downloader() as dl:
        err = await fetch_error(dl, f"http://{userinfo}127.0.0.1:{target.port}/img.png")
    assert err.code == "bad_url"
    assert target.hits == []


async def test_a_redirect_to_a_host_name_label_over_63_characters_is_a_bad_url() -> None:
    async with serve(jump_routes) as srv, downloader() as dl:
        srv.state["target"] = f"http://{'a' * 64}.test:{srv.port}/img.png"
        err = await fetch_error(dl, srv.url("/jump"))
    assert err.code == "bad_url"
    assert err.transient is False
    assert srv.hits == ["/jump"]


class IdnaResolver(FakeResolver):
    """Encodes the name as the system resolver does first (socket.getaddrinfo), then looks it up."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        host.encode("idna")  # raises UnicodeError for an empty or overlong label
        return await super().resolve(host, port, family)


async def test_a_host_name_the_resolver_cannot_encode_is_a_bad_url() -> None:
    guard = ONLY_127_0_0_1
    async with serve(jump_routes) as srv:
        srv.state["target"] = f"http://a..test:{srv.port}/img.png"  # an empty label
        connector = guarded_connector(guard, resolver=IdnaResolver({"a..test": ["127.0.0.1"]}))
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=2)) as session:
            err = await fetch_error(AiohttpDownloader(session, guard, FAST), srv.url("/jump"))
    assert err.code == "bad_url"
    assert srv.hits == ["/jump"]


async def test_a_host_name_label_of_63_characters_is_not_a_bad_url() -> None:
    guard = ONLY_127_0_0_1
    label = "a" * 63
    async with serve(image_routes) as srv:
        connector = guarded_connector(guard, resolver=IdnaResolver({f"{label}.test": ["127.0.0.1"]}))
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=2)) as session:
            dl = AiohttpDownloader(session, guard, FAST)
            assert await dl.fetch(f"http://{label}.test:{srv.port}/img.png") == b"\x89PNG fake image bytes"


# --- size limits -----------------------------------------------------------------------


async def test_a_declared_content_length_over_the_limit_is_refused_without_reading() -> None:
    limits = DownloadLimits(connect_timeout=0.5, total_timeout=5.0, max_bytes=1000)

    def routes(app: web.Application, server: Server) -> None:
        async def big(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            resp.content_length = 10_000
            await resp.prepare(request)
            await resp.write(b"x" * 100)
            await asyncio.sleep(3)  # the rest would only arrive much later
            await resp.write(b"x" * 9_900)
            return resp

        app.router.add_get("/big", big)

    async with serve(routes) as srv, downloader(limits=limits) as dl:
        started = time.monotonic()
        err = await fetch_error(dl, srv.url("/big"))
        elapsed = time.monotonic() - started
    assert err.code == "too_large"
    assert err.transient is False
    assert "10000" in str(err)
    assert elapsed < 1.5


async def test_a_chunked_body_growing_past_the_limit_is_cut_off() -> None:
    limits = DownloadLimits(connect_timeout=0.5, total_timeout=5.0, max_bytes=4096)

    def routes(app: web.Application, server: Server) -> None:
        async def endless(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(200):  # would take ~4 s to finish
                await resp.write(b"y" * 1024)
                await asyncio.sleep(0.02)
            return resp

        app.router.add_get("/endless", endless)

    async with serve(routes) as srv, downloader(limits=limits) as dl:
        started = time.monotonic()
        err = await fetch_error(dl, srv.url("/endless"))
        elapsed = time.monotonic() - started
    assert err.code == "too_large"
    assert err.transient is False
    assert elapsed < 1.5


async def test_a_body_exactly_at_the_limit_is_accepted() -> None:
    limits = DownloadLimits(connect_timeout=0.5, total_timeout=5.0, max_bytes=4096)

    def routes(app: web.Application, server: Server) -> None:
        async def exact(request: web.Request) -> web.Response:
            return web.Response(body=b"z" * 4096)

        app.router.add_get("/exact", exact)

    async with serve(routes) as srv, downloader(limits=limits) as dl:
        assert await dl.fetch(srv.url("/exact")) == b"z" * 4096


# --- timeouts and connection failures --------------------------------------------------


async def test_a_server_slower_than_the_total_timeout_times_out() -> None:
    limits = DownloadLimits(connect_timeout=0.3, total_timeout=0.3)

    def routes(app: web.Application, server: Server) -> None:
        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(3)
            return web.Response(body=b"too late")

        app.router.add_get("/slow", slow)

    async with serve(routes) as srv, downloader(limits=limits) as dl:
        started = time.monotonic()
        err = await fetch_error(dl, srv.url("/slow"))
        elapsed = time.monotonic() - started
    assert err.code == "timeout"
    assert err.transient is True
    assert elapsed < 1.5


async def test_a_body_trickling_slower_than_the_total_timeout_times_out() -> None:
    limits = DownloadLimits(connect_timeout=0.3, total_timeout=0.3)

    def routes(app: web.Application, server: Server) -> None:
        async def trickle(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(30):
                await resp.write(b"t")
                await asyncio.sleep(0.1)
            return resp

        app.router.add_get("/trickle", trickle)

    async with serve(routes) as srv, downloader(limits=limits) as dl:
        err = await fetch_error(dl, srv.url("/trickle"))
    assert err.code == "timeout"
    assert err.transient is True


async def test_a_closed_port_is_a_transient_connection_error() -> None:
    # Bound but not listening: connecting to it is refused, and nobody else can take the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with downloader() as dl:
            err = await fetch_error(dl, f"http://127.0.0.1:{port}/img.png")
    assert err.code == "connection_error"
    assert err.transient is True


async def test_an_unresolvable_host_name_is_a_transient_connection_error() -> None:
    guard = ONLY_127_0_0_1
    connector = guarded_connector(guard, resolver=FakeResolver({}))
    async with ClientSession(connector=connector) as session:
        dl = AiohttpDownloader(session, guard, FAST)
        err = await fetch_error(dl, "http://nowhere.test/img.png")
    assert err.code == "connection_error"
    assert err.transient is True


# --- HTTP status handling --------------------------------------------------------------


def status_routes(app: web.Application, server: Server) -> None:
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=code, headers=headers, body=b"nope")

    app.router.add_get("/status/{code}", status)


@pytest.mark.parametrize("code", [500, 502, 503, 504, 408])
async def test_server_errors_and_request_timeouts_are_transient(code: int) -> None:
    async with serve(status_routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url(f"/status/{code}"))
    assert err.code == "server_error"
    assert err.transient is True
    assert str(code) in str(err)


async def test_too_many_requests_is_rate_limited_with_the_retry_after_seconds() -> None:
    async with serve(status_routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url("/status/429?retry_after=2"))
    assert err.code == "rate_limited"
    assert err.transient is True
    assert err.retry_after == 2.0


async def test_too_many_requests_without_retry_after_has_no_retry_hint() -> None:
    async with serve(status_routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url("/status/429"))
    assert err.code == "rate_limited"
    assert err.retry_after is None


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410])
async def test_client_errors_are_permanent_http_errors(code: int) -> None:
    async with serve(status_routes) as srv, downloader() as dl:
        err = await fetch_error(dl, srv.url(f"/status/{code}"))
    assert err.code == "http_error"
    assert err.transient is False
    assert str(code) in str(err)


# --- bad URLs (rejected before any connection) ----------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/img.png", "file:///etc/passwd", "http:///no-host", "no scheme"]
)
async def test_urls_that_are_not_http_with_a_host_are_bad_urls(url: str) -> None:
    async with downloader() as dl:
        err = await fetch_error(dl, url)
    assert err.code == "bad_url"
    assert err.transient is False


# --- Retry-After parsing (pure values) -------------------------------------------------


def test_retry_after_in_seconds_is_parsed() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 17 ") == 17.0


def test_retry_after_as_an_http_date_is_converted_to_seconds_from_now() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(42.0)


def test_retry_after_is_capped_and_never_negative() -> None:
    assert parse_retry_after("86400") == 300.0
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after("-5") == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan"])
def test_unparseable_retry_after_gives_no_hint(value: str | None) -> None:
    assert parse_retry_after(value) is None
