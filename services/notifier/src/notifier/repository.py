"""PostgreSQL adapter of the notifier: the persisted delivery schedule and its attempt log.

Every statement a tenant's HTTP call can reach names the tenant, writes included; the
dispatcher's own statements (claiming, recording) work on rows it was handed by the claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
from pipeline_runtime.auth import DEFAULT_TENANT
from pipeline_runtime.database import ACQUIRE_TIMEOUT
from pipeline_schemas import RequestCompleted

_CLAIM_DUE = """
UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $2)
 WHERE delivery_id IN (
   SELECT delivery_id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
 RETURNING delivery_id, event_id, request_id, target_url, payload, attempts, subscription_id, tenant_id"""

_RECORD = """
UPDATE webhook_deliveries SET attempts = $2, last_status_code = $3, last_error = $4, status = $5,
       delivered_at = CASE WHEN $5 = 'delivered' THEN now() END,
       next_attempt_at = CASE WHEN $6::float8 IS NULL THEN next_attempt_at
                              ELSE now() + make_interval(secs => $6::float8) END
 WHERE delivery_id = $1"""

_LOG = """
SELECT d.delivery_id, d.event_id AS webhook_id, d.target_url, d.status AS delivery_status, a.attempt, a.attempted_at, a.status_code,
       a.error, a.latency_ms, a.response_excerpt
  FROM webhook_deliveries d LEFT JOIN webhook_attempts a USING (delivery_id)
 WHERE d.request_id = $1 AND d.tenant_id = $2 ORDER BY d.created_at, a.attempt LIMIT $3"""

_REPLAY = """
UPDATE webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now()
 WHERE delivery_id = $1 AND tenant_id = $2 AND status = 'dead'
   AND (subscription_id IS NULL OR EXISTS (SELECT 1 FROM webhook_subscriptions s
        WHERE s.subscription_id = d.subscription_id AND s.tenant_id = $2 AND s.deleted_at IS NULL))"""

Target = tuple[UUID | None, str]  # (subscription id, or None for the per-request webhook_url; URL)
LOG_LIMIT = 1000  # attempt rows one request's log answers with at most


@dataclass(frozen=True)
class Delivery:
    delivery_id: UUID
    event_id: UUID
    request_id: UUID
    target_url: str
    payload: bytes
    attempts: int
    subscription_id: UUID | None = None
    tenant_id: str = DEFAULT_TENANT  # whose secret signs a per-request webhook


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt found and what it means for the delivery."""

    status_code: int | None
    error: str | None
    latency_ms: float
    excerpt: str | None
    verdict: str  # delivered | retry | dead
    delay: float | None  # seconds to the next attempt when retrying


# The rows of the delivery log and of the dead letters are the API's answers as they are (routes.py).
@dataclass(frozen=True)
class Attempt:
    """One attempt in a request's delivery log; a delivery not yet attempted appears once, with `attempt` null."""

    delivery_id: UUID
    webhook_id: UUID  # the request.completed event's id
    target_url: str
    delivery_status: str  # pending | delivered | dead
    attempt: int | None
    attempted_at: datetime | None
    status_code: int | None
    error: str | None
    latency_ms: float | None
    response_excerpt: str | None  # at most NOTIFIER_RESPONSE_EXCERPT_BYTES of the answer's start


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: UUID
    webhook_id: UUID
    request_id: UUID
    target_url: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


class DeliveryRepository(Protocol):
    async def enqueue(self, event: RequestCompleted, payload: bytes, targets: list[Target]) -> None: ...

    async def claim_due(self, limit: int, lease_seconds: float) -> list[Delivery]: ...

    async def record_attempt(self, delivery: Delivery, result: AttemptResult) -> None: ...

    async def request_exists(self, tenant_id: str, request_id: UUID) -> bool: ...

    async def deliveries_for(self, tenant_id: str, request_id: UUID) -> list[Attempt]: ...

    async def dead_letters(self, tenant_id: str, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, tenant_id: str, delivery_id: UUID) -> bool: ...


class AsyncpgDeliveryRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def enqueue(self, event: RequestCompleted, payload: bytes, targets: list[Target]) -> None:
        """One delivery per (event, target URL); a replayed event adds nothing."""
        rows = [
            (uuid.uuid4(), event.event_id, event.request_id, event.tenant_id, url, payload, sub)
            for sub, url in targets
        ]
        await self._pool.executemany(
            "INSERT INTO webhook_deliveries"
            " (delivery_id, event_id, request_id, tenant_id, target_url, payload, subscription_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id, target_url) DO NOTHING",
            rows,
        )

    async def claim_due(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """Due deliveries, leased so that no other dispatcher sends them meanwhile."""
        rows = await self._pool.fetch(_CLAIM_DUE, limit, lease_seconds)
        return [Delivery(**dict(r)) for r in rows]

    async def record_attempt(self, delivery: Delivery, result: AttemptResult) -> None:
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            # The log numbers attempts over the delivery's whole life, replays included.
            await conn.execute(
                "INSERT INTO webhook_attempts"
                " (delivery_id, attempt, status_code, error, latency_ms, response_excerpt)"
                " SELECT $1, count(*) + 1, $2, $3, $4, $5 FROM webhook_attempts WHERE delivery_id = $1",
                delivery.delivery_id,
                result.status_code,
                result.error,
                result.latency_ms,
                result.excerpt,
            )
            await conn.execute(
                _RECORD,
                delivery.delivery_id,
                delivery.attempts + 1,
                result.status_code,
                result.error,
                "pending" if result.verdict == "retry" else result.verdict,
                result.delay,
            )

    async def request_exists(self, tenant_id: str, request_id: UUID) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT 1 FROM requests WHERE request_id = $1 AND tenant_id = $2", request_id, tenant_id
            )
        )

    async def deliveries_for(self, tenant_id: str, request_id: UUID) -> list[Attempt]:
        rows = await self._pool.fetch(_LOG, request_id, tenant_id, LOG_LIMIT)
        return [Attempt(**dict(r)) for r in rows]

    async def dead_letters(self, tenant_id: str, limit: int = 100) -> list[DeadLetter]:
        rows = await self._pool.fetch(
            "SELECT delivery_id, event_id AS webhook_id, request_id, target_url, attempts, last_status_code, last_error,"
            " created_at FROM webhook_deliveries WHERE tenant_id = $1 AND status = 'dead'"
            " ORDER BY created_at DESC LIMIT $2",
            tenant_id,
            limit,
        )
        return [DeadLetter(**dict(r)) for r in rows]

    async def replay(self, tenant_id: str, delivery_id: UUID) -> bool:
        """Put a dead delivery back on the schedule with a fresh set of attempts (same webhook-id)."""
        result = await self._pool.execute(_REPLAY, delivery_id, tenant_id)
        return result.endswith(" 1")
