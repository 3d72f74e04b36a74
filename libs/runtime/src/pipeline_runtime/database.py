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
