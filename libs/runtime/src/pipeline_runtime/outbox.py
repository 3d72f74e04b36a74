"""The transactional outbox relay: rows committed with business data are published to Kafka.

A producer writes its events into the `outbox` table in the same transaction as the facts
they announce, so an accepted fact is never without its event, even if Kafka is down. This
relay publishes rows in id order and deletes them only after the broker acknowledged them,
inside one transaction that holds their row locks (SKIP LOCKED lets several relays share
the table). A crash between acknowledgement and delete republishes a row: consumers
deduplicate on the event id.

The relay sleeps between batches until it is woken: by `wake()` from its own process, or by the
`outbox` notification a commit in any process sends (PostgreSQL LISTEN, db/migrations/0012);
the idle poll remains as a fallback for a notification lost while the listener reconnects.

A row's `kafka_partition` (db/migrations/0016), when set, is the partition its event goes to;
otherwise the producer's partitioner chooses by key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg
import structlog

from .database import ACQUIRE_TIMEOUT
from .kafka import AsyncProducer
from .metrics import OUTBOX_BACKLOG
from .wakeups import PgWakeups

log = structlog.get_logger(__name__)

_CLAIM = (
    "SELECT id, topic, key, value, kafka_partition FROM outbox WHERE topic = ANY($1::text[])"
    " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AsyncProducer,
        topics: Sequence[str],
        *,
        batch_size: int = 2000,
        idle_seconds: float = 0.5,
        retry_seconds: float = 2.0,
        service: str = "unknown",
        listen: bool = True,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topics = list(topics)
        self._batch_size = batch_size
        self._idle = idle_seconds
        self._retry = retry_seconds
        self._wake = asyncio.Event()
        self._service = service
        self._sampled_at = 0.0
        self.published = 0
        self._wakeups = (
            PgWakeups(
                pool, "outbox", self.wake, accept=self._topics.__contains__, retry_seconds=retry_seconds
            )
            if listen
            else None
        )

    def wake(self) -> None:
        """Called after a commit that added outbox rows, so they go out without waiting."""
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._topics, self._batch_size)
            if not rows:
                return 0
            futures = [
                self._producer.send_nowait(r["topic"], r["key"], r["value"], partition=r["kafka_partition"])
                for r in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)

    async def sample_backlog(self, every: float = 5.0) -> None:
        """Keep the outbox backlog gauge fresh (at most one count every `every` seconds)."""
        now = time.monotonic()
        if now - self._sampled_at >= every:
            self._sampled_at = now
            rows = await self._pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = ANY($1::text[])", self._topics
            )
            OUTBOX_BACKLOG.labels(self._service).set(rows)

    async def run(self) -> None:
        """Relay forever; errors (Kafka or PostgreSQL away) are logged and retried."""
        try:
            await self._relay_forever()
        finally:
            if self._wakeups is not None:
                await self._wakeups.close()

    async def _relay_forever(self) -> None:
        while True:
            try:
                if self._wakeups is not None:
                    await self._wakeups.ensure()
                await self.sample_backlog()
                # Cleared before the claim, not after: a wake-up for rows committed while this
                # batch is being claimed must not be lost until the idle poll.
                self._wake.clear()
                count = await self.publish_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever failed
                log.warning("outbox.publish_failed", error=str(exc), topics=self._topics)
                await asyncio.sleep(self._retry)
                continue
            if count:
                log.debug("outbox.published", count=count)
            if count < self._batch_size:
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that races its timeout, and then `task.cancel(); await task` never returns.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle):
                await self._wake.wait()
