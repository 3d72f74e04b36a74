"""PostgreSQL as every service meets it: errors to wait out, the pool, and closing it at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Server down, restarting, shutting down or out of connection slots, or a pooled connection that
# died with it: HTTP routes answer 503 (retry later), consumers wait and retry; never a 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)

ACQUIRE_TIMEOUT = 10.0
CHECK_TIMEOUT = 2.0  # a readiness probe's query; the prober gives up on the whole check soon after


async def create_db_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float | None = 30,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A pool that fails fast instead of hanging when the server goes away or restarts.

    Without these bounds a query on a connection whose server vanished mid-way can wait forever,
    which would stall a consumer; with them it raises, and callers retry. min_size=0 lets an HTTP
    service start (and report not ready) while PostgreSQL is down. command_timeout=None is for
    statements whose length grows with the input (ingest's COPY of a 300,000-image upload).
    `reset` replaces asyncpg's reset query on release (None: asyncpg's own; see asyncpg.Pool).
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=5,
        command_timeout=command_timeout,
        max_inactive_connection_lifetime=60,
        reset=reset,
    )


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool `reset` that skips asyncpg's reset query (RESET ALL, UNLISTEN *, CLOSE ALL, ...).

    For a pool whose statements leave no session state behind (no SET, LISTEN, cursor or session
    lock): the default reset costs a round trip and four statements per release for nothing.
    asyncpg still rolls back a transaction left open before it calls this. Only for a pool that
    nothing else uses (a LISTEN connection needs the default reset to be given back).
    """
    del conn


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully, but never hang shutdown on a connection lost in an outage."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database.pool_close_timeout", timeout=timeout)
        pool.terminate()


async def database_reachable(pool: asyncpg.Pool, timeout: float = CHECK_TIMEOUT) -> bool:
    """One `SELECT 1` within `timeout`: the readiness check of every service that uses PostgreSQL."""
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False
    return True
