"""One download per source URL and request, across every member: claims kept in PostgreSQL.

Ingest spreads a request's images over the partitions, so copies of one URL within a request may
be worked on by different members at once. The first to claim (request, URL) downloads and compresses it; the
others wait for its outcome and report it as their own. A claim is a lease: if its owner dies,
another slot takes over once the lease runs out, and the owner's own redelivery takes over at once.
A settled claim also makes a replayed image cheap: its outcome is reported without a download.

Claims go to PostgreSQL in batches (issue 14): the claims of images that start together (one
fetch's worth) are one statement, and outcomes are written behind, a batch at a time, before the
next claims and before the member commits offsets, instead of two transactions per image.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg
import structlog
from pipeline_schemas import (
    IMAGE_RESULTS,
    ImageResult,
    encode,
    new_event_id,
)

log = structlog.get_logger(__name__)

# The table is created by db/migrations (0004, 0005); the compressor only uses it.
_CLAIM = """
INSERT INTO compressor_sources AS s (request_id, url_sha256, owner_image, state, lease_until)
VALUES ($1, $2, $3, 'working', now() + make_interval(secs => $4))
ON CONFLICT (request_id, url_sha256) DO UPDATE
   SET owner_image = EXCLUDED.owner_image, lease_until = EXCLUDED.lease_until, updated_at = now(),
       starts = CASE WHEN s.owner_image = EXCLUDED.owner_image THEN s.starts + 1 ELSE 1 END
 WHERE s.state = 'working' AND (s.owner_image = EXCLUDED.owner_image OR s.lease_until < now())
RETURNING starts"""
# Many claims in one statement, in key order so that members lock shared rows in the same order.
_CLAIM_MANY = """
INSERT INTO compressor_sources AS s (request_id, url_sha256, owner_image, state, lease_until)
SELECT t.request_id, t.url_sha256, t.owner_image, 'working', now() + make_interval(secs => $4)
  FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS t(request_id, url_sha256, owner_image)
 ORDER BY t.request_id, t.url_sha256
ON CONFLICT (request_id, url_sha256) DO UPDATE
   SET owner_image = EXCLUDED.owner_image, lease_until = EXCLUDED.lease_until, updated_at = now(),
       starts = CASE WHEN s.owner_image = EXCLUDED.owner_image THEN s.starts + 1 ELSE 1 END
 WHERE s.state = 'working' AND (s.owner_image = EXCLUDED.owner_image OR s.lease_until < now())
RETURNING request_id, url_sha256, starts"""
_READ = """
SELECT state, result, GREATEST(0, EXTRACT(EPOCH FROM lease_until - now()))::float8 AS lease_left
  FROM compressor_sources WHERE request_id = $1 AND url_sha256 = $2"""
_READ_MANY = """
SELECT s.request_id, s.url_sha256, s.state, s.result,
       GREATEST(0, EXTRACT(EPOCH FROM s.lease_until - now()))::float8 AS lease_left
  FROM compressor_sources s
  JOIN unnest($1::uuid[], $2::text[]) AS t(request_id, url_sha256) USING (request_id, url_sha256)"""
_HOLD = """
UPDATE compressor_sources SET lease_until = now() + make_interval(secs => $4), updated_at = now()
 WHERE request_id = $1 AND url_sha256 = $2 AND owner_image = $3 AND state = 'working'"""
_SETTLE_MANY = """
UPDATE compressor_sources AS s SET state = 'settled', result = t.result, updated_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bytea[]) AS t(request_id, url_sha256, owner_image, result)
 WHERE s.request_id = t.request_id AND s.url_sha256 = t.url_sha256 AND s.owner_image = t.owner_image"""
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

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None:
        """Record an owned claim's outcome; it may be written later, but before `flush` returns."""
        ...

    async def flush(self) -> None:
        """Write every outcome settled so far (the worker calls it before committing offsets)."""
        ...


class NoClaims:
    """Without a database every slot does its own work (the store's keys still dedupe objects)."""

    async def claim(self, request_id: UUID, digest: str, image_id: UUID) -> Claim:
        return Owned()

    async def hold(self, request_id: UUID, digest: str, image_id: UUID, seconds: float) -> None:
        return None

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None:
        return None

    async def flush(self) -> None:
        return None


@dataclass(frozen=True)
class _Ask:
    """A claim waiting for the next batch statement."""

    request_id: UUID
    digest: str
    image_id: UUID
    answer: asyncio.Future[Claim]

    @property
    def key(self) -> tuple[UUID, str]:
        return (self.request_id, self.digest)


def first_per_key(asks: Sequence[_Ask]) -> tuple[list[_Ask], list[_Ask]]:
    """Split asks into the first for each (request, URL) and the repeats.

    One statement cannot claim the same row twice (PostgreSQL refuses an ON CONFLICT update of a
    row it inserted or updated itself), so repeats are claimed one by one after the batch.
    """
    firsts: dict[tuple[UUID, str], _Ask] = {}
    repeats = []
    for ask in asks:
        if ask.key in firsts:
            repeats.append(ask)
        else:
            firsts[ask.key] = ask
    return list(firsts.values()), repeats


class PgSourceClaims:
    """Claims in PostgreSQL, a batch statement at a time.

    One writer task sends every statement: first the outcomes settled since its last pass (one
    UPDATE), then the claims asked for meanwhile (one INSERT). Claims asked in the same turn of the
    event loop, as the images of one fetch are, share a statement; so do claims asked while a
    statement is in flight. Outcomes wait at most `settle_delay` seconds, and `flush` writes them
    before the worker commits offsets, so an image whose offset is committed has its outcome
    stored (a crash before that replays the image, as before).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        lease_seconds: float,
        poll_seconds: float = 1.0,
        *,
        settle_delay: float = 0.1,
        max_batch: int = 500,
    ) -> None:
        self._pool = pool
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._settle_delay = settle_delay
        self._max_batch = max_batch
        self._asks: list[_Ask] = []
        self._outcomes: dict[tuple[UUID, str, UUID], bytes] = {}
        self._writer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def prepare(self, retention_days: int) -> None:
        """Drop claims older than the retention."""
        await self._pool.execute(_EXPIRE, retention_days)

    async def claim(self, request_id: UUID, digest: str, image_id: UUID) -> Claim:
        ask = _Ask(request_id, digest, image_id, asyncio.get_running_loop().create_future())
        self._asks.append(ask)
        self._kick()
        return await ask.answer

    async def hold(self, request_id: UUID, digest: str, image_id: UUID, seconds: float) -> None:
        await self._pool.execute(_HOLD, request_id, digest, image_id, seconds + self._lease)

    async def settle(self, request_id: UUID, digest: str, image_id: UUID, result: ImageResult) -> None:
        self._outcomes[(request_id, digest, image_id)] = encode(result)
        if len(self._outcomes) >= self._max_batch:
            self._kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._settle_delay, self._kick)

    async def flush(self) -> None:
        self._kick()
        if self._writer is not None:
            await asyncio.shield(self._writer)

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Send what is waiting, until nothing is; never raises (callers get their errors)."""
        while self._outcomes or self._asks:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            outcomes, self._outcomes = self._outcomes, {}
            if outcomes:
                await self._settle_many(outcomes)
            asks, self._asks = self._asks[: self._max_batch], self._asks[self._max_batch :]
            if asks:
                await self._answer(asks)

    async def _settle_many(self, outcomes: dict[tuple[UUID, str, UUID], bytes]) -> None:
        keys = list(outcomes)
        columns = ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], list(outcomes.values()))
        try:
            await self._pool.execute(_SETTLE_MANY, *columns)
        except CLAIMS_UNAVAILABLE as exc:  # best effort: the other slots redo the work
            log.warning("claims.unavailable", error=str(exc) or type(exc).__name__, outcomes=len(keys))

    async def _answer(self, asks: list[_Ask]) -> None:
        firsts, repeats = first_per_key(asks)
        try:
            async with self._pool.acquire() as conn:
                claims = await self._claim_many(conn, firsts)
                for ask in firsts:
                    _resolve(ask, claims[ask.key])
                for ask in repeats:
                    _resolve(ask, await self._claim_one(conn, ask))
        except Exception as exc:  # noqa: BLE001 - every waiting claim gets the error, the writer goes on
            for ask in asks:
                if not ask.answer.done():
                    ask.answer.set_exception(exc)

    async def _claim_many(self, conn: asyncpg.Connection, asks: list[_Ask]) -> dict[tuple[UUID, str], Claim]:
        ids = [a.request_id for a in asks], [a.digest for a in asks]
        rows = await conn.fetch(_CLAIM_MANY, *ids, [a.image_id for a in asks], self._lease)
        claims: dict[tuple[UUID, str], Claim] = {(r[0], r[1]): Owned(r[2]) for r in rows}
        others = [a for a in asks if a.key not in claims]
        if others:
            found = await conn.fetch(_READ_MANY, [a.request_id for a in others], [a.digest for a in others])
            states = {(r["request_id"], r["url_sha256"]): r for r in found}
            claims.update({a.key: self._not_owned(states.get(a.key)) for a in others})
        return claims

    async def _claim_one(self, conn: asyncpg.Connection, ask: _Ask) -> Claim:
        starts = await conn.fetchval(_CLAIM, ask.request_id, ask.digest, ask.image_id, self._lease)
        if starts is not None:
            return Owned(starts)
        return self._not_owned(await conn.fetchrow(_READ, ask.request_id, ask.digest))

    def _not_owned(self, row: asyncpg.Record | None) -> Claim:
        if row is None:  # expired and deleted between the two statements: rare, ask again soon
            return Busy(0.1)
        if row["state"] == "settled":
            return Settled(IMAGE_RESULTS.decode(row["result"]))
        return Busy(min(max(row["lease_left"], 0.1), self._poll))


def _resolve(ask: _Ask, claim: Claim) -> None:
    if not ask.answer.done():  # its image may have been cancelled meanwhile
        ask.answer.set_result(claim)


def as_own_result(result: ImageResult, image_id: UUID) -> ImageResult:
    """Another slot's outcome, reported for `image_id` as a new event."""
    if result.image_id == image_id:
        return result.model_copy(update={"occurred_at": dt.datetime.now(dt.UTC)})
    return result.model_copy(
        update={"image_id": image_id, "event_id": new_event_id(), "occurred_at": dt.datetime.now(dt.UTC)}
    )
