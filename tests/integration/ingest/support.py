"""Helpers for ingest's real-stack tests: the app in-process, uploads, CSV text."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager
from ingest.app import create_app
from ingest.config import Settings
from pipeline_runtime.auth import new_api_key
from pipeline_runtime.kafka import KafkaSettings

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
    settings = Settings(
        database_url=database_url,
        kafka=KafkaSettings(bootstrap_servers=bootstrap_servers),
        status_base_url="http://127.0.0.1:18001",
        bootstrap_api_key=key,
        **overrides,
    )
    app = create_app(settings)
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
