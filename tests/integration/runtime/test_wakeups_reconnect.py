"""A listening connection that its server drops is noticed and replaced, never a stuck loop.

When PostgreSQL ends a pooled connection, asyncpg's pool closes it and detaches the proxy the
listener holds: every call on that proxy raises from then on. Found by the chaos suite (restart
PostgreSQL): the outbox relay raised on every pass and published nothing after the restart.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from pipeline_runtime.wakeups import PgWakeups

pytestmark = pytest.mark.integration

CHANNEL = "test_wakeups_reconnect"


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def wait_for(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


async def eventually(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_a_listener_whose_connection_the_server_ended_listens_again(pool, fresh_database_url):
    woken = asyncio.Event()
    wakeups = PgWakeups(pool, CHANNEL, woken.set, retry_seconds=0.2)
    await wakeups.ensure()
    assert wakeups.listening
    woken.clear()

    other = await asyncpg.connect(fresh_database_url)
    try:
        ended = await other.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'"
        )
        assert ended >= 1
        assert await eventually(lambda: not wakeups.listening, 10.0)  # the loss reaches the client

        deadline = time.monotonic() + 10
        while not wakeups.listening and time.monotonic() < deadline:
            await wakeups.ensure()  # must not raise on the dead proxy
            await asyncio.sleep(0.1)
        assert wakeups.listening
        woken.clear()
        await other.execute(f"NOTIFY {CHANNEL}")
        assert await wait_for(woken, 5.0)
    finally:
        await other.close()
        await wakeups.close()
