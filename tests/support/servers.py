"""Local HTTP servers for tests, bound to 127.0.0.1 only: image hosts and webhook subscribers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class LocalServer:
    """An aiohttp server on 127.0.0.1 and an ephemeral port that records every request."""

    routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    received: list[RecordedRequest] = field(default_factory=list)
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
        if self.runner:
            await self.runner.cleanup()

    def hits(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.received if r.path == "/" + path.lstrip("/")]


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
