"""One download per source URL and request, across every member: claims kept in PostgreSQL.

image.requested is keyed by image id, so copies of one URL within a request land on different
partitions and members. The first to claim (request, URL) downloads and compresses it; the
others wait for its outcome and report it as their own. A claim is a lease: if its owner dies,
another slot takes over once the lease runs out, and the owner's own redelivery takes over at once.
A settled claim also makes a replayed image cheap: its outcome is reported without a download.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg
from pipeline_schemas import (
    IMAGE_RESULTS,
    ImageResult,
    encode,
    new_event_id,
)

# The table is created by db/migrations (0004, 0005); the compressor only uses it.
_CLAIM = """
INSERT INTO compressor_sources AS s (request_id, url_sha256, owner_image, state, lease_until)
VALUES ($1, $2, $3, 'working', now() + make_interval(secs => $4))
ON CONFLICT (request_id, url_sha256) DO UPDATE
   SET owner_image = EXCLUDED.owner_image, lease_until = EXCLUDED.lease_until, updated_at = now(),
       starts = CASE WHEN s.owner_image = EXCLUDED.owner_image THEN s.starts + 1 ELSE 1 END
 WHERE s.state = 'working' AND (s.owner_image = EXCLUDED.owner_image OR s.lease_until < now())
RETURNING starts"""
_READ = """
SELECT state, result, GREATEST(0, EXTRACT(EPOCH FROM lease_until - now()))::float8 AS lease_left
  FROM compressor_sources WHERE request_id = $1 AND url_sha256 = $2"""
_HOLD = """
UPDATE compressor_sources SET lease_until = now() + make_interval(secs => $4), updated_at = now()
 WHERE request_id = $1 AND url_sha256 = $2 AND owner_image = $3 AND state = 'working'"""
_SETTLE = """
UPDATE compressor_sources SET state = 'settled', result = $4, updated_at = now()
 WHERE request_id = $1 AND url_sha256 = $2 AND owner_image = $3"""
_EXPIRE = "DELETE FROM compressor_sources WHERE updated_at < now() - make_interval(days => $1)"

# Errors that mean "the claims database is not usable now": work goes on without dedupe.
CLAIMS_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class Owned:
    """This slot does the work; `starts` counts how often this image has started on it.

    Starts beyond the image's attempts mean its work was cut short: handed back on a rebalance,
    or its member died (perhaps because of this very image: see handlers.py).
    """

    starts: int = 1


@dataclass(frozen=True)
class Settled:
    """Another slot (or an earlier run of this one) finished; its outcome is `result`."""

    result: ImageResult


@dataclass(frozen=True)
class Busy:
    """Another slot is at work on the same URL; ask again in `retry_in` seconds."""

    retry_in: float


Claim = Owned | Settled | Busy


class SourceClaims(Protocol):
    async def claim(self, request_id: UUID, digest: str, image_id: UUID) -> Claim: ...

    async def hold(self, request_id: UUID, digest: str, image_id: UUID, seconds: float) -> None:
        """Keep an owned claim while its work waits for a retry."""
        ...

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None: ...


class NoClaims:
    """Without a database every slot does its own work (the store's keys still dedupe objects)."""

    async def claim(self, request_id: UUID, digest: str, image_id: UUID) -> Claim:
        return Owned()

    async def hold(self, request_id: UUID, digest: str, image_id: UUID, seconds: float) -> None:
        return None

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None:
        return None


class PgSourceClaims:
    def __init__(self, pool: asyncpg.Pool, lease_seconds: float, poll_seconds: float = 1.0) -> None:
        self._pool = pool
        self._lease = lease_seconds
        self._poll = poll_seconds

    async def prepare(self, retention_days: int) -> None:
        """Drop claims older than the retention."""
        await self._pool.execute(_EXPIRE, retention_days)

    async def claim(self, request_id: UUID, digest: str, image_id: UUID) -> Claim:
        async with self._pool.acquire() as conn:
            starts = await conn.fetchval(_CLAIM, request_id, digest, image_id, self._lease)
            if starts is not None:
                return Owned(starts)
            row = await conn.fetchrow(_READ, request_id, digest)
        if row is None:  # expired and deleted between the two statements: rare, ask again soon
            return Busy(0.1)
        if row["state"] == "settled":
            return Settled(IMAGE_RESULTS.decode(row["result"]))
        return Busy(min(max(row["lease_left"], 0.1), self._poll))

    async def hold(self, request_id: UUID, digest: str, image_id: UUID, seconds: float) -> None:
        await self._pool.execute(_HOLD, request_id, digest, image_id, seconds + self._lease)

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None:
        await self._pool.execute(_SETTLE, request_id, digest, image_id, encode(result))


def as_own_result(result: ImageResult, image_id: UUID) -> ImageResult:
    """Another slot's outcome, reported for `image_id` as a new event."""
    if result.image_id == image_id:
        return result.model_copy(update={"occurred_at": dt.datetime.now(dt.UTC)})
    return result.model_copy(
        update={"image_id": image_id, "event_id": new_event_id(), "occurred_at": dt.datetime.now(dt.UTC)}
    )
