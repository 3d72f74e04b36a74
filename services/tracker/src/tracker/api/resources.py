"""What the tracker API's routes need, typed as protocols, and the one factory that opens the real ones.

Progress streams poll PostgreSQL through a pool of their own (TRACKER_EVENTS_POOL_SIZE
connections), so however many streams are open, plain reads keep the connections of theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import structlog
from pipeline_runtime.api_access import BOOTSTRAP_WAIT, start_bootstrap
from pipeline_runtime.auth import AsyncpgKeyStore, Principal
from pipeline_runtime.database import DATABASE_UNAVAILABLE

from ..config import Settings
from .queries import AsyncpgProgressQueries, ProgressQueries

log = structlog.get_logger(__name__)
CHECK_TIMEOUT = 2.0
READ_POOL_SIZE = 10


class KeyStore(Protocol):
    async def find(self, key: str) -> Principal | None: ...


@dataclass(frozen=True)
class Resources:
    """What the routes use; tests pass fakes through create_app(resources=...)."""

    queries: ProgressQueries  # plain reads: status, images, output CSV
    stream_queries: ProgressQueries  # the polls of progress streams, on connections of their own
    readiness: Callable[[], Awaitable[dict[str, bool]]]  # {"database": reachable?}
    key_store: KeyStore | None = None  # None: the app keeps NoKeys (every key is refused)


ResourceFactory = Callable[[Settings], AbstractAsyncContextManager[Resources]]


async def reachable(pool: asyncpg.Pool) -> bool:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False
    return True


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully, but never hang shutdown on a connection lost in an outage."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database.pool_close_timeout", timeout=timeout)
        pool.terminate()


async def open_pool(dsn: str, max_size: int, name: str) -> asyncpg.Pool:
    """min_size=0: the API starts, and answers 503, while PostgreSQL is down."""
    settings = {"application_name": name}
    return await asyncpg.create_pool(dsn, min_size=0, max_size=max_size, timeout=5, server_settings=settings)


@contextlib.asynccontextmanager
async def connect_database(settings: Settings) -> AsyncIterator[Resources]:
    reads = await open_pool(settings.database_url, READ_POOL_SIZE, "tracker-api")
    streams = await open_pool(settings.database_url, settings.events_pool_size, "tracker-api-streams")

    async def readiness() -> dict[str, bool]:
        return {"database": await reachable(reads)}

    keys = AsyncpgKeyStore(reads)
    bootstrap = start_bootstrap(keys, settings.bootstrap_api_key, DATABASE_UNAVAILABLE)
    await asyncio.wait({bootstrap}, timeout=BOOTSTRAP_WAIT)  # serve anyway while PostgreSQL is down
    try:
        yield Resources(AsyncpgProgressQueries(reads), AsyncpgProgressQueries(streams), readiness, keys)
    finally:
        bootstrap.cancel()
        await asyncio.wait({bootstrap}, timeout=5)
        await close_pool(streams)
        await close_pool(reads)
