"""PostgreSQL adapter of the worker: idempotent result recording and the completion outbox row.

`ResultRecorder` is what the agent needs; `AsyncpgResultRecorder` its one implementation. A poll's
worth of results is recorded in one transaction with a fixed number of statements (one per result
kind, one for the counters, one per request whose status changes), not a few round trips per image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast
from uuid import UUID

import asyncpg
from pipeline_runtime.database import ACQUIRE_TIMEOUT
from pipeline_schemas import (
    REQUEST_COMPLETED,
    ImageCompressed,
    ImageCompressionFailed,
    ImageResult,
    RequestCompleted,
    RequestStatus,
    encode,
)
from pipeline_schemas.images import OutputFormat

from ..progress import Progress, completion_event_id

# Only a pending image changes, so a replay (in this batch or any earlier one) changes nothing and
# is not returned: what comes back is exactly the images this batch counts.
_MARK_DONE = """
UPDATE images AS i SET status = 'done', output_url = u.output_url, input_bytes = u.input_bytes,
       output_bytes = u.output_bytes, width = u.width, height = u.height,
       kept_original = u.kept_original, result_event_id = u.event_id, finished_at = now(),
       output_format = u.output_format, output_quality = u.output_quality, ssim = u.ssim
  FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], $7::bool[],
              $8::uuid[], $9::text[], $10::int[], $11::float8[])
       AS u(image_id, output_url, input_bytes, output_bytes, width, height, kept_original, event_id,
            output_format, output_quality, ssim)
 WHERE i.image_id = u.image_id AND i.status = 'pending' RETURNING i.image_id, i.request_id"""
_MARK_FAILED = """
UPDATE images AS i SET status = 'failed', error_code = u.error_code, error_message = u.message,
       attempts = u.attempts, result_event_id = u.event_id, finished_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::uuid[])
       AS u(image_id, error_code, message, attempts, event_id)
 WHERE i.image_id = u.image_id AND i.status = 'pending' RETURNING i.image_id, i.request_id"""
_COUNT = """
UPDATE requests AS r SET processed_images = r.processed_images + u.processed,
       failed_images = r.failed_images + u.failed, updated_at = now()
  FROM unnest($1::uuid[], $2::int[], $3::int[]) AS u(request_id, processed, failed)
 WHERE r.request_id = u.request_id
 RETURNING r.request_id, r.status, r.total_images, r.processed_images, r.failed_images, r.tenant_id,
           r.webhook_url, r.cancelled_images, r.cancel_requested_at IS NOT NULL AS cancelling"""
# What request.completed says of the formats (issue 16): one small read, once per request.
_FORMATS = """
SELECT coalesce(output_format, 'jpeg') AS format, count(*)::int AS images
  FROM images WHERE request_id = $1 AND status = 'done' GROUP BY 1 ORDER BY 1"""
_SET_STATUS = """
UPDATE requests SET status = $2, completed_at = CASE WHEN $3 THEN now() END
 WHERE request_id = $1 RETURNING completed_at"""


@dataclass(frozen=True)
class Recorded:
    """What recording one result did."""

    counted: bool  # False: a duplicate or unknown image, nothing changed
    completed: RequestCompleted | None = None


class ResultRecorder(Protocol):
    async def record_results(self, events: Sequence[ImageResult]) -> list[Recorded]: ...


def first_of_each_image(events: Sequence[ImageResult]) -> dict[UUID, int]:
    """Index of the first result of every image in a batch: the first result wins, as one by one."""
    first: dict[UUID, int] = {}
    for index, event in enumerate(events):
        first.setdefault(event.image_id, index)
    return first


class AsyncpgResultRecorder:
    def __init__(self, pool: asyncpg.Pool, public_base_url: str) -> None:
        self._pool = pool
        self._base = public_base_url.rstrip("/")

    async def record_result(self, event: ImageResult) -> Recorded:
        return (await self.record_results([event]))[0]

    async def record_results(self, events: Sequence[ImageResult]) -> list[Recorded]:
        """Count each image once, whatever is replayed; finishing a request writes its event.

        One transaction: either the whole batch is stored (and may be acknowledged) or nothing is.
        """
        first = first_of_each_image(events)
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            marked = await self._mark_images(conn, [events[i] for i in first.values()])
            if not marked:
                return [Recorded(counted=False) for _ in events]
            completions = await self._count(conn, events, marked)
        return self._outcomes(events, first, marked, completions)

    @staticmethod
    async def _mark_images(conn: asyncpg.Connection, events: list[ImageResult]) -> dict[UUID, UUID]:
        """Image id -> request id of every image this batch moved out of pending."""
        done = [e for e in events if isinstance(e, ImageCompressed)]
        failed = [e for e in events if isinstance(e, ImageCompressionFailed)]
        rows: list[asyncpg.Record] = []
        if done:
            columns = (
                [e.image_id for e in done],
                [e.output_url for e in done],
                [e.input_bytes for e in done],
                [e.output_bytes for e in done],
                [e.width for e in done],
                [e.height for e in done],
                [e.kept_original for e in done],
                [e.event_id for e in done],
                [e.format for e in done],
                [e.quality for e in done],
                [e.ssim for e in done],
            )
            rows += await conn.fetch(_MARK_DONE, *columns)
        if failed:
            columns_failed = (
                [e.image_id for e in failed],
                [e.reason_code for e in failed],
                [e.message for e in failed],
                [e.attempts for e in failed],
                [e.event_id for e in failed],
            )
            rows += await conn.fetch(_MARK_FAILED, *columns_failed)
        return {row["image_id"]: row["request_id"] for row in rows}

    async def _count(
        self, conn: asyncpg.Connection, events: Sequence[ImageResult], marked: dict[UUID, UUID]
    ) -> dict[UUID, RequestCompleted]:
        """Add the counted images to their requests; the completions this batch finished."""
        kinds = {e.image_id: isinstance(e, ImageCompressed) for e in reversed(events)}  # first wins
        processed = Counter(rid for image, rid in marked.items() if kinds[image])
        failed = Counter(rid for image, rid in marked.items() if not kinds[image])
        request_ids = sorted(set(marked.values()))
        rows = await conn.fetch(
            _COUNT, request_ids, [processed[r] for r in request_ids], [failed[r] for r in request_ids]
        )
        completions: dict[UUID, RequestCompleted] = {}
        for row in rows:
            progress = Progress(
                row["total_images"],
                row["processed_images"],
                row["failed_images"],
                row["cancelled_images"],
                row["cancelling"],
            )
            if progress.status == row["status"]:
                continue
            rid = row["request_id"]
            completed_at = await conn.fetchval(_SET_STATUS, rid, progress.status, progress.finished)
            if progress.finished:
                formats = {r["format"]: r["images"] for r in await conn.fetch(_FORMATS, rid)}
                completions[rid] = self._completion(rid, row, progress, completed_at, formats)
        if completions:
            await conn.executemany(
                "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
                [(REQUEST_COMPLETED.name, str(rid).encode(), encode(c)) for rid, c in completions.items()],
            )
        return completions

    @staticmethod
    def _outcomes(
        events: Sequence[ImageResult],
        first: dict[UUID, int],
        marked: dict[UUID, UUID],
        completions: dict[UUID, RequestCompleted],
    ) -> list[Recorded]:
        """One outcome per event; a request's completion goes with one counted result of it."""
        outcomes = [
            Recorded(counted=first[e.image_id] == i and e.image_id in marked) for i, e in enumerate(events)
        ]
        for index, event in enumerate(events):
            rid = marked.get(event.image_id) if outcomes[index].counted else None
            if rid is not None and rid in completions:
                outcomes[index] = Recorded(counted=True, completed=completions.pop(rid))
        return outcomes

    def _completion(
        self,
        request_id: UUID,
        row: asyncpg.Record,
        progress: Progress,
        completed_at: datetime,
        formats: dict[OutputFormat, int],
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
            output_formats=formats,
        )
