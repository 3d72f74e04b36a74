"""Local HTTP servers for tests, bound to loopback only: image hosts and webhook subscribers.

`serving()` runs a `LocalServer` for the length of an `async with`; the route factories below
(`answers`, `never_answers`, `held`, `delayed`) are the behaviours the e2e and chaos suites give
their hosts and subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class LocalServer:
    """An aiohttp server on 127.0.0.1 and an ephemeral port that records every request."""

    routes: dict[str, Route] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    received: list[RecordedRequest] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends every `held` route
    host: str = "127.0.0.1"
    runner: web.AppRunner | None = None
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(RecordedRequest(request.path, dict(request.headers), body, time.time()))
        name = request.path.lstrip("/")
        if name in self.routes:
            return await self.routes[name](request)
        if name in self.files:
            return web.Response(body=self.files[name], content_type="application/octet-stream")
        return web.Response(status=404)

    async def start(self) -> LocalServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.release.set()  # a held request would otherwise delay the cleanup by its full wait
        if self.runner:
            await self.runner.cleanup()

    def hits(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.received if r.path == "/" + path.lstrip("/")]


@contextlib.asynccontextmanager
async def serving(
    files: Mapping[str, bytes] | None = None,
    routes: Mapping[str, Route] | None = None,
    *,
    host: str = "127.0.0.1",
) -> AsyncIterator[LocalServer]:
    """A started `LocalServer` with these files and routes, stopped when the block ends."""
    server = LocalServer(routes=dict(routes or {}), files=dict(files or {}), host=host)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def answers(statuses: list[int] | None = None, then: int = 200) -> Route:
    """A route answering `statuses` in turn to its first calls, then `then` to every later one."""
    script = list(statuses or [])
    calls = 0

    async def handler(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(status=script[calls - 1] if calls <= len(script) else then)

    return handler


async def never_answers(_: web.Request) -> web.Response:
    """Longer than the notifier's 1.5 s timeout in the test stack, shorter than any test's wait."""
    await asyncio.sleep(5)
    return web.Response(status=200)


def held(body: bytes, release: asyncio.Event, *, at_most: float) -> Route:
    """A route that answers `body` once `release` is set, or after `at_most` seconds at the latest."""

    async def handler(_: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), at_most)
        return web.Response(body=body, content_type="image/jpeg")

    return handler


def delayed(server: LocalServer, seconds: float) -> Route:
    """A route serving the server's file at the request path after `seconds` (keeps work in flight)."""

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(body=server.files[request.path.lstrip("/")])

    return handler


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.25
) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return await predicate()
