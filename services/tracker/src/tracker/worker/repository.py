"""PostgreSQL adapter of the worker: idempotent result recording and the completion outbox row.

`ResultRecorder` is what the agent needs; `AsyncpgResultRecorder` its one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast
from uuid import UUID

import asyncpg
from pipeline_runtime.database import ACQUIRE_TIMEOUT
from pipeline_schemas import (
    REQUEST_COMPLETED,
    ImageCompressed,
    ImageResult,
    RequestCompleted,
    RequestStatus,
    encode,
)

from ..progress import Progress, completion_event_id

_MARK_DONE = """
UPDATE images SET status = 'done', output_url = $2, input_bytes = $3, output_bytes = $4,
       width = $5, height = $6, kept_original = $7, result_event_id = $8, finished_at = now(),
       output_format = $9, output_quality = $10, ssim = $11
 WHERE image_id = $1 AND status = 'pending' RETURNING request_id"""
_MARK_FAILED = """
UPDATE images SET status = 'failed', error_code = $2, error_message = $3, attempts = $4,
       result_event_id = $5, finished_at = now()
 WHERE image_id = $1 AND status = 'pending' RETURNING request_id"""
_COUNT = """
UPDATE requests SET processed_images = processed_images + $2, failed_images = failed_images + $3,
       updated_at = now()
 WHERE request_id = $1
 RETURNING status, total_images, processed_images, failed_images, tenant_id, webhook_url,
           cancelled_images, cancel_requested_at IS NOT NULL AS cancelling"""


@dataclass(frozen=True)
class Recorded:
    """What recording one result did."""

    counted: bool  # False: a duplicate or unknown image, nothing changed
    completed: RequestCompleted | None = None


class ResultRecorder(Protocol):
    async def record_result(self, event: ImageResult) -> Recorded: ...


class AsyncpgResultRecorder:
    def __init__(self, pool: asyncpg.Pool, public_base_url: str) -> None:
        self._pool = pool
        self._base = public_base_url.rstrip("/")

    async def record_result(self, event: ImageResult) -> Recorded:
        """Count each image once, whatever is replayed; finishing a request writes its event."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            if not await self._mark_image(conn, event):
                return Recorded(counted=False)
            done = isinstance(event, ImageCompressed)
            row = await conn.fetchrow(_COUNT, event.request_id, int(done), int(not done))
            progress = Progress(
                row["total_images"],
                row["processed_images"],
                row["failed_images"],
                row["cancelled_images"],
                row["cancelling"],
            )
            if progress.status == row["status"]:
                return Recorded(counted=True)
            completed_at = await conn.fetchval(
                "UPDATE requests SET status = $2, completed_at = CASE WHEN $3 THEN now() END"
                " WHERE request_id = $1 RETURNING completed_at",
                event.request_id,
                progress.status,
                progress.finished,
            )
            if not progress.finished:
                return Recorded(counted=True)
            completed = self._completion(event.request_id, row, progress, completed_at)
            await conn.execute(
                "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
                REQUEST_COMPLETED.name,
                str(event.request_id).encode(),
                encode(completed),
            )
            return Recorded(counted=True, completed=completed)

    @staticmethod
    async def _mark_image(conn: asyncpg.Connection, event: ImageResult) -> bool:
        """Only a pending image changes: a replay, or a result contradicting the first, does nothing."""
        if isinstance(event, ImageCompressed):
            marked = await conn.fetchval(
                _MARK_DONE,
                event.image_id,
                event.output_url,
                event.input_bytes,
                event.output_bytes,
                event.width,
                event.height,
                event.kept_original,
                event.event_id,
                event.format,
                event.quality,
                event.ssim,
            )
        else:
            marked = await conn.fetchval(
                _MARK_FAILED, event.image_id, event.reason_code, event.message, event.attempts, event.event_id
            )
        return marked is not None

    def _completion(
        self, request_id: UUID, row: asyncpg.Record, progress: Progress, completed_at: datetime
    ) -> RequestCompleted:
        return RequestCompleted(
            event_id=completion_event_id(request_id),
            request_id=request_id,
            tenant_id=row["tenant_id"],
            # Only a finished request completes, so its status is a final one (pydantic checks it).
            status=cast(RequestStatus, progress.status),
            total_images=progress.total,
            processed_images=progress.processed,
            failed_images=progress.failed,
            cancelled_images=progress.cancelled,
            completed_at=completed_at,
            output_csv_url=f"{self._base}/requests/{request_id}/output.csv",
            webhook_url=row["webhook_url"],
        )
