"""PostgreSQL adapter of the scheduler: leadership, what waits and what runs, and admission.

Leadership is a session advisory lock held on the scheduler's own connection, and every
statement of the scheduler runs on that connection: if the connection is lost, so is the lock,
and the next statement fails instead of admitting alongside a new leader. PostgreSQL releases
the lock the moment the holder's connection closes (a killed process's socket is closed by the
kernel), so a follower polling every `lock_retry_seconds` takes over within that time.

The leader LISTENs on ADMISSIONS_CHANNEL on that same connection: every upload's transaction
notifies it (repository.py), PostgreSQL delivers the notification only after the commit, so the
round it wakes sees the new request. Only the leader listens; a new leader's first round runs at
once and finds whatever was committed before it listened.

Admitting a batch is one transaction: the requests' rows are locked (a concurrent cancel
waits, then sees the new cursor), the next images after each request's cursor are read in input
order (an index range scan: O(batch)), the cursors and counts move, and one image.requested
event per image goes into the outbox, which the relay publishes (to the partition the
round chose for it, `kafka_partition`, or by key). A crash before the commit
admits nothing; after it, the outbox holds every event: nothing is lost, and an event the relay
publishes twice is recorded once by the tracker (it marks an image only while it is pending).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg
from pipeline_schemas import IMAGE_REQUESTED, utc_now

from .placement import spread
from .scheduling import ActiveRequest, Admission
from .uploads import RequestedEventTemplate, UploadOptions, uuid4_strings

LOCK_KEY = 7_312_013  # any constant shared by every ingest instance: "the scheduler"
APPLICATION_NAME = "imgpipe-scheduler"
CONNECT_TIMEOUT = 5.0
STATEMENT_TIMEOUT_MS = 10_000
ADMISSIONS_CHANNEL = "admissions"  # NOTIFY: images were queued for admission (payload unused)

# One statement (one round trip, one snapshot) per round: the active requests with their tenant's
# weight, and the two counts as uncorrelated subqueries, which PostgreSQL evaluates once.
_SNAPSHOT = """
SELECT r.request_id, r.tenant_id, r.priority, r.total_images, r.admitted_images, r.cancelled_images,
       r.processed_images, r.failed_images, r.cancel_requested_at IS NOT NULL AS cancelling,
       w.weight,
       (SELECT count(*) FROM images
         WHERE finished_at > now() - make_interval(secs => $1::float8)) AS completed,
       (SELECT count(*) FROM outbox WHERE topic = $2) AS unpublished
  FROM requests AS r LEFT JOIN tenant_weights AS w ON w.tenant_id = r.tenant_id
 WHERE r.completed_at IS NULL ORDER BY r.created_at, r.request_id"""
_LOCK_REQUESTS = """
SELECT request_id, tenant_id, quality, output_format, quality_auto, jpeg_optimize, jpeg_progressive,
       admit_row, admit_position FROM requests
 WHERE request_id = ANY($1::uuid[]) AND completed_at IS NULL AND cancel_requested_at IS NULL
 ORDER BY request_id FOR UPDATE"""
_NEXT_IMAGES = """
SELECT a.rid AS request_id, i.image_id, i.input_url, i.row_number, i.position
  FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS a(rid, after_row, after_pos, n)
 CROSS JOIN LATERAL (
       SELECT image_id, input_url, row_number, position FROM images
        WHERE request_id = a.rid AND (row_number, position) > (a.after_row, a.after_pos)
        ORDER BY row_number, position LIMIT a.n) AS i"""
_MOVE_CURSORS = """
UPDATE requests AS r SET admitted_images = r.admitted_images + u.n, admit_row = u.last_row,
       admit_position = u.last_pos
  FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS u(rid, n, last_row, last_pos)
 WHERE r.request_id = u.rid"""


@dataclass(frozen=True)
class Snapshot:
    requests: list[ActiveRequest]
    weights: dict[str, int]
    completed: int  # images finished in the sampled period
    unpublished: int = 0  # image.requested events admitted but still in the outbox


class AdmissionStore(Protocol):
    def listen(self, wake: Callable[[], None]) -> None: ...
    async def lead(self) -> bool: ...
    async def snapshot(self, sample_seconds: float) -> Snapshot: ...
    async def admit(self, plan: Sequence[Admission], partitions: Sequence[int] = ()) -> int: ...
    async def resign(self) -> None: ...


class AsyncpgAdmissionStore:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._leading = False
        self._wake: Callable[[], None] = lambda: None

    def listen(self, wake: Callable[[], None]) -> None:
        """`wake` is called when an upload commits anywhere, and when the connection is lost."""
        self._wake = wake

    async def lead(self) -> bool:
        """True while this instance holds the scheduler lock (tries to take it when not)."""
        if self._leading:
            return True
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=CONNECT_TIMEOUT,
                server_settings={
                    "statement_timeout": str(STATEMENT_TIMEOUT_MS),
                    # Operators (and the failover test) find the scheduling process in pg_stat_activity.
                    "application_name": f"{APPLICATION_NAME} {os.getpid()}",
                },
            )
            # Lost (server gone, socket reset): wake the loop so its next round fails and starts
            # over now, rather than after an idle wait during which no notification can arrive.
            self._conn.add_termination_listener(self._lost)
        if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            await self._conn.add_listener(ADMISSIONS_CHANNEL, self._notified)
            self._leading = True
        return self._leading

    def _notified(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self._wake()

    def _lost(self, _conn: object) -> None:
        self._wake()

    async def resign(self) -> None:
        """Drop the connection, and the lock with it (after an error or at shutdown)."""
        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _leader(self) -> asyncpg.Connection:
        if not self._leading or self._conn is None:
            raise RuntimeError("not the scheduler")
        return self._conn

    async def snapshot(self, sample_seconds: float) -> Snapshot:
        rows = await self._leader().fetch(_SNAPSHOT, sample_seconds, IMAGE_REQUESTED.name)
        return Snapshot(
            [active_request(age, row) for age, row in enumerate(rows)],
            {r["tenant_id"]: r["weight"] for r in rows if r["weight"] is not None},
            rows[0]["completed"] if rows else 0,  # no request active: nothing to size a window for
            rows[0]["unpublished"] if rows else 0,
        )

    async def admit(self, plan: Sequence[Admission], partitions: Sequence[int] = ()) -> int:
        """Admit the planned images in one transaction; returns how many were admitted.

        Their events are dealt over `partitions` (none: the producer hashes the image id)."""
        conn = self._leader()
        wanted = {a.request_id: a.count for a in plan if a.count > 0}
        async with conn.transaction():
            locked = await conn.fetch(_LOCK_REQUESTS, list(wanted))
            if not locked:
                return 0
            images = await conn.fetch(
                _NEXT_IMAGES,
                [r["request_id"] for r in locked],
                [r["admit_row"] for r in locked],
                [r["admit_position"] for r in locked],
                [wanted[r["request_id"]] for r in locked],
            )
            if not images:
                return 0
            await conn.execute(_MOVE_CURSORS, *cursor_moves(images))
            by_id = {r["request_id"]: r for r in locked}
            await conn.copy_records_to_table(
                "outbox",
                records=outbox_rows(images, by_id, partitions),
                columns=["topic", "key", "value", "kafka_partition"],
            )
        return len(images)


def active_request(age: int, row: asyncpg.Record) -> ActiveRequest:
    finished = row["processed_images"] + row["failed_images"]
    unadmitted = row["total_images"] - row["admitted_images"] - row["cancelled_images"]
    return ActiveRequest(
        request_id=row["request_id"],
        tenant_id=row["tenant_id"],
        queued=0 if row["cancelling"] else max(0, unadmitted),
        in_flight=max(0, row["admitted_images"] - finished),
        priority=row["priority"],
        age=age,
    )


def cursor_moves(images: Sequence[asyncpg.Record]) -> tuple[list[UUID], list[int], list[int], list[int]]:
    """Per request: how many were admitted and the (row, position) of the last one."""
    last: dict[UUID, tuple[int, int, int]] = {}
    for img in images:  # rows of one request need not come back in order: keep the greatest
        n, row, pos = last.get(img["request_id"], (0, -1, -1))
        here = (img["row_number"], img["position"])
        last[img["request_id"]] = (n + 1, *max((row, pos), here))
    rids = list(last)
    return rids, [last[r][0] for r in rids], [last[r][1] for r in rids], [last[r][2] for r in rids]


def outbox_rows(
    images: Sequence[asyncpg.Record], requests: dict[UUID, asyncpg.Record], partitions: Sequence[int] = ()
) -> Iterator[tuple[str, bytes, bytes, int | None]]:
    """One image.requested event per image, encoded from a template per request: byte for byte
    what the ImageRequested model encodes (tests/unit/ingest/test_uploads.py), without building
    and validating a model per image. Keyed by image id whatever its partition (a retry the
    compressor re-enqueues is keyed the same)."""
    now = utc_now()
    templates = {rid: RequestedEventTemplate(rid, request_options(req), now) for rid, req in requests.items()}
    topic = IMAGE_REQUESTED.name
    rows = zip(uuid4_strings(len(images)), images, spread(len(images), partitions), strict=True)
    for event_id, img, partition in rows:
        image_id = str(img["image_id"])
        value = templates[img["request_id"]].encode(event_id, image_id, img["input_url"])
        yield topic, image_id.encode(), value, partition


def request_options(req: asyncpg.Record) -> UploadOptions:
    """What an image.requested event repeats from its request's row."""
    return UploadOptions(
        quality="auto" if req["quality_auto"] else req["quality"],
        tenant_id=req["tenant_id"],
        format=req["output_format"],
        optimize=req["jpeg_optimize"],
        progressive=req["jpeg_progressive"],
    )
