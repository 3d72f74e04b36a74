"""PostgreSQL LISTEN as a wake-up signal for polling loops (outbox relays, webhook dispatchers).

A trigger notifies a channel when rows are committed (db/migrations/0012); a loop that listens
acts at once instead of after its idle interval. The poll stays the fallback: a notification is
only a hint, lost while the listening connection is down, and the loop still polls on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncpg
import structlog

from .database import ACQUIRE_TIMEOUT, DATABASE_UNAVAILABLE

log = structlog.get_logger(__name__)


class PgWakeups:
    """Holds one pooled connection that LISTENs on `channel` and calls `on_notify` per hint.

    `accept` filters on the payload (e.g. the outbox topic). `ensure()` is cheap while listening
    and retries a lost connection at most every `retry_seconds`, so it can run on every loop pass.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        on_notify: Callable[[], None],
        *,
        accept: Callable[[str], bool] | None = None,
        retry_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._on_notify = on_notify
        self._accept = accept
        self._retry = retry_seconds
        self._conn: asyncpg.Connection | None = None
        self._next_try = 0.0

    @property
    def listening(self) -> bool:
        if self._conn is None:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:
            # When its server goes away the pool closes the connection and detaches our proxy
            # itself: every call on the proxy raises from then on, and it is no longer ours.
            self._conn = None
            return False

    async def ensure(self) -> None:
        """Listen if not already; a failure is logged and retried later (polling goes on)."""
        if self.listening or time.monotonic() < self._next_try:
            return
        await self.close()
        self._next_try = time.monotonic() + self._retry
        try:
            conn = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the database away: keep polling
            log.warning("wakeups.unavailable", channel=self._channel, error=repr(exc))
            return
        try:
            await conn.add_listener(self._channel, self._notified)
        except Exception as exc:  # noqa: BLE001 - same: polling covers it
            log.warning("wakeups.unavailable", channel=self._channel, error=repr(exc))
            await self._pool.release(conn)
            return
        self._conn = conn
        # After a reconnect, rows committed while nobody listened are found by the next poll;
        # waking once now makes that poll immediate.
        self._on_notify()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if self._accept is None or self._accept(payload):
            self._on_notify()

    async def run(self) -> None:
        """Keep listening for a loop that has no pass of its own to call `ensure()` from."""
        try:
            while True:
                await self.ensure()
                await asyncio.sleep(self._retry)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening and give the connection back (the pool's reset drops the LISTEN)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # A proxy the pool already took back (its server went away) raises InterfaceError, one of
        # DATABASE_UNAVAILABLE: then there is nothing left to stop or to give back.
        with contextlib.suppress(*DATABASE_UNAVAILABLE):
            if not conn.is_closed():
                await conn.remove_listener(self._channel, self._notified)
        with contextlib.suppress(asyncpg.InterfaceError):
            await self._pool.release(conn)
