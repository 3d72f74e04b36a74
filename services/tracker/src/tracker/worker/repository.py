"""PostgreSQL adapter of the worker: idempotent result recording and the completion outbox row.

`ResultRecorder` is what the agent needs; `AsyncpgResultRecorder` its one implementation. A poll's
worth of results is recorded by one statement (one round trip, its own transaction);
only a batch that finishes a request takes a transaction of a few, to write the completion too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
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

from ..progress import completion_event_id

# One round trip per batch, its own transaction. Only a pending image changes, so a replay (in this
# batch or any earlier one) changes nothing and is not returned. Rows with an image_id: the images
# the batch counted; rows without: the requests it finished (a final status now, not before; the
# counts are those of the request's latest row version, which the UPDATE waits for and re-reads).
# A request whose counts were final before has no pending image left, so it is never finished
# twice. $16 false: a batch that would finish a request fails with TB001 and keeps nothing.
_RECORD = """
WITH given AS (
    SELECT * FROM unnest($1::uuid[], $2::bool[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[],
                         $7::int[], $8::int[], $9::bool[], $10::text[], $11::int[], $12::float8[],
                         $13::text[], $14::text[], $15::int[])
           AS u(image_id, ok, event_id, output_url, input_bytes, output_bytes, width, height,
                kept_original, output_format, output_quality, ssim, error_code, error_message,
                attempts)
), marked AS (
    UPDATE images AS i
       SET status = CASE WHEN u.ok THEN 'done' ELSE 'failed' END,
           output_url = u.output_url, input_bytes = u.input_bytes, output_bytes = u.output_bytes,
           width = u.width, height = u.height, kept_original = u.kept_original,
           output_format = u.output_format, output_quality = u.output_quality, ssim = u.ssim,
           error_code = u.error_code, error_message = u.error_message,
           attempts = coalesce(u.attempts, i.attempts), result_event_id = u.event_id,
           finished_at = now()
      FROM given AS u
     WHERE i.image_id = u.image_id AND i.status = 'pending'
    RETURNING i.image_id, i.request_id, u.ok
), added AS (
    SELECT m.request_id, count(*) FILTER (WHERE m.ok)::int AS processed,
           count(*) FILTER (WHERE NOT m.ok)::int AS failed
      FROM marked AS m GROUP BY m.request_id
), counted AS (
    UPDATE requests AS r
       SET processed_images = r.processed_images + a.processed,
           failed_images = r.failed_images + a.failed, updated_at = now(),
           status = request_progress_status(r.total_images, r.processed_images + a.processed,
                                            r.failed_images + a.failed, r.cancelled_images,
                                            r.cancel_requested_at IS NOT NULL),
           completed_at = CASE
               WHEN r.processed_images + r.failed_images + r.cancelled_images < r.total_images
                AND r.processed_images + a.processed + r.failed_images + a.failed + r.cancelled_images >= r.total_images
               THEN now() ELSE r.completed_at END
      FROM added AS a
     WHERE r.request_id = a.request_id
    RETURNING r.request_id, r.status, r.tenant_id, r.total_images, r.processed_images,
              r.failed_images, r.cancelled_images, r.cancel_requested_at IS NOT NULL AS cancelling,
              r.webhook_url, r.completed_at,
              r.processed_images + r.failed_images + r.cancelled_images >= r.total_images
              AND r.processed_images - a.processed + r.failed_images - a.failed + r.cancelled_images < r.total_images AS finishes
)
SELECT m.image_id, m.request_id, NULL::text AS status, NULL::text AS tenant_id, NULL::int AS total_images,
       NULL::int AS processed_images, NULL::int AS failed_images, NULL::int AS cancelled_images,
       NULL::bool AS cancelling, NULL::text AS webhook_url, NULL::timestamptz AS completed_at
  FROM marked AS m
UNION ALL
SELECT CASE WHEN $16::bool THEN NULL ELSE refuse_finishing(c.request_id) END, c.request_id, c.status,
       c.tenant_id, c.total_images, c.processed_images, c.failed_images, c.cancelled_images,
       c.cancelling, c.webhook_url, c.completed_at
  FROM counted AS c WHERE c.finishes"""
# SQLSTATE of refuse_finishing (0015_tracker_records_in_one_statement.sql).
_FINISHES_A_REQUEST = "TB001"
# What request.completed says of the formats (issue 16): read after the counting statement, in the
# same transaction, so it sees the images every committed batch marked.
_FORMATS = """
SELECT coalesce(output_format, 'jpeg') AS format, count(*)::int AS images
  FROM images WHERE request_id = $1 AND status = 'done' GROUP BY 1 ORDER BY 1"""
_INSERT_COMPLETION = "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)"


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


def result_columns(events: Sequence[ImageResult]) -> tuple[list[Any], ...]:
    """The statement's array parameters, one element per result, sorted by image id.

    Sorted, so that concurrent batches lock the images they share in the same order. The columns
    of the other result kind are NULL (a pending image has NULL there already).
    """
    ordered = sorted(events, key=lambda e: e.image_id)
    done = [e if isinstance(e, ImageCompressed) else None for e in ordered]
    failed = [e if isinstance(e, ImageCompressionFailed) else None for e in ordered]
    return (
        [e.image_id for e in ordered],
        [d is not None for d in done],
        [e.event_id for e in ordered],
        *(_field(done, name) for name in _DONE_FIELDS),
        *(_field(failed, name) for name in _FAILED_FIELDS),
    )


# The statement's columns of each result kind, in its parameter order.
_DONE_FIELDS = (
    "output_url", "input_bytes", "output_bytes", "width", "height", "kept_original", "format",
    "quality", "ssim",
)  # fmt: skip
_FAILED_FIELDS = ("reason_code", "message", "attempts")


def _field(events: list[Any], name: str) -> list[Any]:
    return [None if event is None else getattr(event, name) for event in events]


class AsyncpgResultRecorder:
    def __init__(self, pool: asyncpg.Pool, public_base_url: str) -> None:
        self._pool = pool
        self._base = public_base_url.rstrip("/")

    async def record_result(self, event: ImageResult) -> Recorded:
        return (await self.record_results([event]))[0]

    async def record_results(self, events: Sequence[ImageResult]) -> list[Recorded]:
        """Count each image once, whatever is replayed; finishing a request writes its event.

        One statement, so one round trip and its own transaction, for a batch that finishes no
        request. A batch that does is recorded again in a transaction that also writes the
        completion's outbox row: either the whole batch is stored (and may be acknowledged) or
        nothing is.
        """
        first = first_of_each_image(events)
        columns = result_columns([events[i] for i in first.values()])
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            try:
                rows = await conn.fetch(_RECORD, *columns, False)
                completions: dict[UUID, RequestCompleted] = {}
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != _FINISHES_A_REQUEST:
                    raise
                async with conn.transaction():
                    rows = await conn.fetch(_RECORD, *columns, True)
                    completions = await self._completions(conn, rows)
                    await conn.executemany(
                        _INSERT_COMPLETION,
                        [
                            (REQUEST_COMPLETED.name, str(r).encode(), encode(c))
                            for r, c in completions.items()
                        ],
                    )
        marked = {row["image_id"]: row["request_id"] for row in rows if row["image_id"] is not None}
        return self._outcomes(events, first, marked, completions)

    async def _completions(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> dict[UUID, RequestCompleted]:
        """The request.completed event of each request the batch finished."""
        completions: dict[UUID, RequestCompleted] = {}
        for row in rows:
            if row["image_id"] is None:
                rid = row["request_id"]
                formats = {r["format"]: r["images"] for r in await conn.fetch(_FORMATS, rid)}
                completions[rid] = self._completion(rid, row, formats)
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
        self, request_id: UUID, row: asyncpg.Record, formats: dict[OutputFormat, int]
    ) -> RequestCompleted:
        return RequestCompleted(
            event_id=completion_event_id(request_id),
            request_id=request_id,
            tenant_id=row["tenant_id"],
            # Only a finished request is returned, so its status is a final one (pydantic checks it).
            status=cast(RequestStatus, row["status"]),
            total_images=row["total_images"],
            processed_images=row["processed_images"],
            failed_images=row["failed_images"],
            cancelled_images=row["cancelled_images"],
            completed_at=row["completed_at"],
            output_csv_url=f"{self._base}/requests/{request_id}/output.csv",
            webhook_url=row["webhook_url"],
            output_formats=formats,
        )
