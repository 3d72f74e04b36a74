"""The stage the hostile cases play on: the running stack's addresses, keys of fresh tenants,
and one loopback host that serves images and answers webhooks (some of them hostile)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiohttp import web

from tests.support.api import bearer
from tests.support.servers import LocalServer

ENDLESS_BYTES = 512 * 1024 * 1024  # what the endless subscriber would send at most
ENDLESS_SECONDS = 20.0  # and for how long at most: it stops as soon as the notifier hangs up
HELD_SECONDS = 60.0  # the held image is released by the suite, or after this at the latest


@dataclass
class Stage:
    ingest: str
    tracker: str
    notifier: str
    database_url: str
    run_dir: Path
    admin: dict[str, str]  # the bootstrap key: every scope, default tenant
    host: LocalServer
    webhook_secret: str  # the stack's global NOTIFIER_SIGNING_SECRET
    endless_sent: int = 0  # bytes the endless subscriber managed to write

    async def new_key(self, tenant: str | None = None, scopes: tuple[str, ...] = ("upload", "read")) -> dict:
        """Headers of a new key for `tenant` (a fresh one when None), and the tenant."""
        tenant = tenant or f"sec-{uuid.uuid4().hex[:10]}"
        async with httpx.AsyncClient(timeout=30, headers=self.admin) as http:
            resp = await http.post(f"{self.ingest}/keys", json={"tenant_id": tenant, "scopes": list(scopes)})
        assert resp.status_code == 201, resp.text
        return {"headers": bearer(resp.json()["key"]), "tenant": tenant}

    @property
    def ingest_port(self) -> int:
        return int(self.ingest.rsplit(":", 1)[1])


def endless(stage: Stage) -> object:
    """A subscriber route answering 200 with a body that does not end (bounded in bytes and time)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        chunk = b"x" * 65536
        deadline = time.monotonic() + ENDLESS_SECONDS
        try:
            while stage.endless_sent < ENDLESS_BYTES and time.monotonic() < deadline:
                await resp.write(chunk)
                stage.endless_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the notifier hung up, as it should after a few KiB
        return resp

    return handler


def silent() -> object:
    """A subscriber route that answers long after the notifier's timeout, so deliveries stay pending."""

    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=200)

    return handler


def redirect(location: str) -> object:
    """A route answering 302 to `location`."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    return handler
