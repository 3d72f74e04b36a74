"""What PostgreSQL trouble looks like from asyncpg: errors to wait out, not to fail on."""

from __future__ import annotations

import asyncpg

# Server down, restarting or shutting down, or a pooled connection that died with it.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
)

ACQUIRE_TIMEOUT = 10.0


async def create_db_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool that fails fast instead of hanging when the server goes away or restarts.

    Without these bounds a query on a connection whose server vanished mid-way can wait forever,
    which would stall a consumer; with them it raises, and callers retry.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=5,
        command_timeout=30,
        max_inactive_connection_lifetime=60,
    )
