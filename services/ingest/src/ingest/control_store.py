"""PostgreSQL adapter of cancel and tenant weights.

A cancel locks the request's row, the row the scheduler locks to admit and the tracker updates
to count a result: the three never interleave. Images after the admission cursor never ran and
are marked `cancelled`; admitted ones may still finish. Whoever finds the request finished
(processed + failed + cancelled = total) while it is still open closes it and writes its one
request.completed event: the cancel itself when nothing is in flight, otherwise the tracker
when the last in-flight result arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

import asyncpg
from pipeline_runtime.database import ACQUIRE_TIMEOUT
from pipeline_schemas import REQUEST_COMPLETED, RequestCompleted, completion_event_id, encode

CancelState = Literal["not_found", "finished", "cancelling", "cancelled"]

_LOCK = """
SELECT tenant_id, webhook_url, completed_at, cancel_requested_at, total_images, processed_images,
       failed_images, cancelled_images, admit_row, admit_position
  FROM requests WHERE request_id = $1 AND tenant_id = $2 FOR UPDATE"""
# The tenant rides along in every statement, though the lock above already proved ownership.
_CANCEL_QUEUED = """
UPDATE images AS i SET status = 'cancelled'
  FROM requests AS r
 WHERE r.request_id = i.request_id AND r.tenant_id = $2 AND i.request_id = $1
   AND (i.row_number, i.position) > ($3, $4) AND i.status = 'pending'"""
_MARK = """
UPDATE requests SET cancel_requested_at = now(), cancelled_images = $3, updated_at = now(),
       status = CASE WHEN $4 THEN 'cancelled' ELSE status END,
       completed_at = CASE WHEN $4 THEN now() END
 WHERE request_id = $1 AND tenant_id = $2 RETURNING completed_at"""


@dataclass(frozen=True)
class CancelOutcome:
    state: CancelState
    cancelled_images: int = 0
    in_flight: int = 0


class ControlStore(Protocol):
    async def cancel(self, request_id: UUID, tenant_id: str) -> CancelOutcome: ...
    async def weight(self, tenant_id: str) -> int: ...
    async def set_weight(self, tenant_id: str, weight: int) -> None: ...


class AsyncpgControlStore:
    def __init__(self, pool: asyncpg.Pool, status_base_url: str) -> None:
        self._pool = pool
        self._base = status_base_url.rstrip("/")

    async def cancel(self, request_id: UUID, tenant_id: str) -> CancelOutcome:
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK, request_id, tenant_id)
            if row is None:
                return CancelOutcome("not_found")
            if row["completed_at"] is not None:
                return CancelOutcome("finished")
            in_flight = row["total_images"] - row["processed_images"] - row["failed_images"]
            if row["cancel_requested_at"] is not None:  # a second cancel changes nothing
                return CancelOutcome(
                    "cancelling", row["cancelled_images"], in_flight - row["cancelled_images"]
                )
            tag = await conn.execute(
                _CANCEL_QUEUED, request_id, tenant_id, row["admit_row"], row["admit_position"]
            )
            cancelled = int(tag.split()[-1])
            in_flight -= cancelled
            completed_at = await conn.fetchval(_MARK, request_id, tenant_id, cancelled, in_flight == 0)
            if completed_at is None:
                return CancelOutcome("cancelling", cancelled, in_flight)
            event = self._completion(request_id, row, cancelled, completed_at)
            await conn.execute(
                "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
                REQUEST_COMPLETED.name,
                str(request_id).encode(),
                encode(event),
            )
        return CancelOutcome("cancelled", cancelled, 0)

    def _completion(
        self, request_id: UUID, row: asyncpg.Record, cancelled: int, completed_at: object
    ) -> RequestCompleted:
        return RequestCompleted.model_validate(
            {
                "event_id": completion_event_id(request_id),
                "request_id": request_id,
                "tenant_id": row["tenant_id"],
                "status": "cancelled",
                "total_images": row["total_images"],
                "processed_images": row["processed_images"],
                "failed_images": row["failed_images"],
                "cancelled_images": cancelled,
                "completed_at": completed_at,
                "output_csv_url": f"{self._base}/requests/{request_id}/output.csv",
                "webhook_url": row["webhook_url"],
            }
        )

    async def weight(self, tenant_id: str) -> int:
        found = await self._pool.fetchval("SELECT weight FROM tenant_weights WHERE tenant_id = $1", tenant_id)
        return found or 1

    async def set_weight(self, tenant_id: str, weight: int) -> None:
        await self._pool.execute(
            "INSERT INTO tenant_weights (tenant_id, weight) VALUES ($1, $2) ON CONFLICT (tenant_id)"
            " DO UPDATE SET weight = EXCLUDED.weight, updated_at = now()",
            tenant_id,
            weight,
        )
