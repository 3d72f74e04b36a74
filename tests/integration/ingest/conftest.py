"""Fixtures: ingest in-process (create_app and its lifespan) on a database of the module's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.integration.ingest.support import running_ingest


@pytest.fixture
async def ingest(fresh_database_url, bootstrap_servers) -> AsyncIterator[httpx.AsyncClient]:
    """An ingest app on a database of this module's own."""
    async with running_ingest(fresh_database_url, bootstrap_servers) as client:
        yield client


@pytest.fixture
async def db(fresh_database_url) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_database_url)
    yield conn
    await conn.close()
