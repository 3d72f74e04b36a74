"""PostgreSQL adapter of the worker: idempotent result recording and the completion outbox row.

`ResultRecorder` is what the agent needs; `AsyncpgResultRecorder` its one implementation. A poll's
worth of results is recorded by one call of a SQL function (one round trip, its own transaction);
only a batch that finishes a request takes a transaction of a few, to write the completion too.
"""

from __future__ import annotations

import json
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

# One round trip per batch: the function of 0015_tracker_records_in_one_statement.sql marks the
# pending images, adds them to their requests' counters and moves their status. Rows with an
# image_id are the images it counted (a replay finds no pending image and is not among them);
# rows without are the requests it finished.
_RECORD = """
SELECT image_id, request_id, status, tenant_id, total_images, processed_images, failed_images,
       cancelled_images, cancelling, webhook_url, completed_at, formats
  FROM record_image_results($1::uuid[], $2::bool[], $3::uuid[], $4::text[], $5::bigint[],
                            $6::bigint[], $7::int[], $8::int[], $9::bool[], $10::text[], $11::int[],
                            $12::float8[], $13::text[], $14::text[], $15::int[], $16::bool)"""
# SQLSTATE the function raises when called with may_finish false on a batch that finishes a
# request: nothing of the call is kept, and the batch is run again in a transaction.
_FINISHES_A_REQUEST = "TB001"
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
    """The function's array arguments, one element per result, sorted by image id.

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


# The function's columns of each result kind, in its argument order.
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
                    completions = self._completions(rows)
                    await conn.executemany(
                        _INSERT_COMPLETION,
                        [
                            (REQUEST_COMPLETED.name, str(r).encode(), encode(c))
                            for r, c in completions.items()
                        ],
                    )
        marked = {row["image_id"]: row["request_id"] for row in rows if row["image_id"] is not None}
        return self._outcomes(events, first, marked, completions)

    def _completions(self, rows: Sequence[asyncpg.Record]) -> dict[UUID, RequestCompleted]:
        """The request.completed event of each request the batch finished."""
        completions: dict[UUID, RequestCompleted] = {}
        for row in rows:
            if row["image_id"] is None:
                rid = row["request_id"]
                completions[rid] = self._completion(rid, row, json.loads(row["formats"]))
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
