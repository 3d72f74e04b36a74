"""Helpers for ingest's real-stack tests: the app in-process, uploads, CSV text."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from ingest.app import create_app
from ingest.config import Settings
from pipeline_runtime.auth import new_api_key
from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.serving import ServingSettings, server_config

# Image URLs of these tests point at the discard port of the loopback address: if a compressor
# of a running stack picks up their events, it fails fast on 127.0.0.1 and nothing else is asked.
NOBODY = "http://127.0.0.1:9"
HEADER = "S. No.,Product Name,Input Image Urls"


@contextlib.asynccontextmanager
async def running_ingest(
    database_url: str, bootstrap_servers: str, **overrides
) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest in-process; the client sends the app's bootstrap key (every scope, tenant default)."""
    key = new_api_key()
    app = create_app(ingest_settings(database_url, bootstrap_servers, key, **overrides))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest.test", timeout=60, headers=bearer(key)
        ) as client:
            yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def upload(client: httpx.AsyncClient, csv: bytes, **kwargs) -> httpx.Response:
    return await client.post("/upload", files={"file": ("products.csv", csv, "text/csv")}, **kwargs)


def csv_bytes(*rows: str, newline: str = "\n") -> bytes:
    return (newline.join([HEADER, *rows]) + newline).encode()


@contextlib.asynccontextmanager
async def served(app, serving: ServingSettings) -> AsyncIterator[int]:
    """The app behind a real uvicorn server on 127.0.0.1 (a free port), as every service runs it."""
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=0, settings=serving))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):  # up to 30 s: the lifespan connects to PostgreSQL first
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        assert server.started, "uvicorn did not start"
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def ingest_settings(database_url: str, bootstrap_servers: str, key: str, **overrides) -> Settings:
    return Settings(
        database_url=database_url,
        kafka=KafkaSettings(bootstrap_servers=bootstrap_servers),
        status_base_url="http://127.0.0.1:18001",
        bootstrap_api_key=key,
        **overrides,
    )
