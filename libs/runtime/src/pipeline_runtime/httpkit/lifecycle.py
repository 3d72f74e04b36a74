"""What a service's resource factory opens and closes: the pool, the key store, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import asyncpg
import structlog
from pydantic import SecretStr

from ..api_access import BOOTSTRAP_WAIT, start_bootstrap
from ..auth import AsyncpgKeyStore
from ..database import CHECK_TIMEOUT, DATABASE_UNAVAILABLE, close_pool, create_db_pool
from ..kafka import AsyncProducer

log = structlog.get_logger(__name__)
TASK_STOP_TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def serving_pool(
    dsn: str, *, max_size: int = 10, command_timeout: float | None = 30
) -> AsyncIterator[asyncpg.Pool]:
    """A pool that opens no connection up front (min_size=0), so the service starts while PostgreSQL is down."""
    pool = await create_db_pool(dsn, min_size=0, max_size=max_size, command_timeout=command_timeout)
    try:
        yield pool
    finally:
        await close_pool(pool)


@contextlib.asynccontextmanager
async def key_store(pool: asyncpg.Pool, bootstrap_key: SecretStr | None) -> AsyncIterator[AsyncpgKeyStore]:
    """The key table, with BOOTSTRAP_API_KEY made to exist: waited for BOOTSTRAP_WAIT s, then in the background."""
    keys = AsyncpgKeyStore(pool)
    bootstrap = start_bootstrap(keys, bootstrap_key, DATABASE_UNAVAILABLE)
    await asyncio.wait({bootstrap}, timeout=BOOTSTRAP_WAIT)  # serve anyway while PostgreSQL is down
    try:
        yield keys
    finally:
        await stop_task(bootstrap)


async def stop_task(task: asyncio.Task[None], timeout: float = TASK_STOP_TIMEOUT) -> None:
    """Cancel until the task is done, within `timeout`.

    Python 3.11's asyncio.wait_for can swallow a cancellation that arrives as its inner wait
    completes (the outbox relay's idle wait after a wake-up does just that), so one cancel() may
    not be enough; a single `await task` would then hang shutdown forever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.done():
        log.warning("task.stop_timeout", task=task.get_name())


async def broker_reachable(producer: AsyncProducer, timeout: float = CHECK_TIMEOUT) -> bool:
    """Kafka answers a metadata request within `timeout` (asked off the event loop)."""
    try:
        return await asyncio.to_thread(producer.has_broker, timeout)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False


async def run_checks(checks: Mapping[str, Callable[[], Awaitable[bool]]]) -> dict[str, bool]:
    """Every readiness check at once (each bounds itself), as {name: reachable}."""
    results = await asyncio.gather(*(check() for check in checks.values()))
    return dict(zip(checks, results, strict=True))
