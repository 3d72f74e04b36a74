"""Fixtures: a pool on a database of the module's own (migrated, no service reads it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def pool(fresh_database_url) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()
