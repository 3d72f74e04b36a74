"""Read-side queries of the tracker API: the `ProgressQueries` protocol and its PostgreSQL adapter.

Every query carries the caller's tenant, so another tenant's request reads exactly like one that
does not exist, whatever the route does with the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from ..eta import WINDOW_SECONDS
from .csv_output import OutputImage


@dataclass(frozen=True)
class RequestRow:
    """A request's progress as the requests table holds it."""

    request_id: UUID
    tenant_id: str
    status: str
    total_images: int
    processed_images: int
    failed_images: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    admitted_images: int = 0  # by the fair scheduler; queued = total - admitted - cancelled
    cancelled_images: int = 0
    # This request's images finished within the ETA window (none read for a finished request).
    recent_finished: int = 0
    recent_first_finished_at: datetime | None = None
    read_at: datetime | None = None  # PostgreSQL's now(), the clock finished_at was written with


@dataclass(frozen=True)
class ImageRow:
    """One image of a request, for the images listing."""

    image_id: UUID
    row_number: int
    serial_number: int
    product_name: str
    position: int
    input_url: str
    output_url: str | None
    status: str
    error_code: str | None
    error_message: str | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None
    format: str | None = None
    quality: int | None = None
    ssim: float | None = None


class ProgressQueries(Protocol):
    """What the routes read; `None` / empty for a request the tenant does not own."""

    async def request_status(self, tenant_id: str, request_id: UUID) -> RequestRow | None: ...

    async def images_page(
        self, tenant_id: str, request_id: UUID, after: tuple[int, int] | None, limit: int
    ) -> list[ImageRow]: ...

    async def output_images(self, tenant_id: str, request_id: UUID) -> list[OutputImage]: ...


# The recent completions go through images_finished_recently (finished_at > now() - window is a
# range of that index, bounded by the pipeline's throughput over the window, not by the request's
# size) and are read only while the request is unfinished.
_STATUS = (
    "SELECT r.request_id, r.tenant_id, r.status, r.total_images, r.processed_images, r.failed_images,"
    " r.created_at, r.updated_at, r.completed_at, r.admitted_images, r.cancelled_images,"
    " w.recent_finished, w.recent_first_finished_at, now() AS read_at"
    " FROM requests r CROSS JOIN LATERAL ("
    "SELECT count(*)::int AS recent_finished, min(i.finished_at) AS recent_first_finished_at"
    " FROM images i WHERE i.request_id = r.request_id AND r.completed_at IS NULL"
    " AND i.finished_at > now() - make_interval(secs => $3::float8)) w"
    " WHERE r.request_id = $1 AND r.tenant_id = $2"
)
_OWNED = "EXISTS (SELECT 1 FROM requests r WHERE r.request_id = $1 AND r.tenant_id = $2)"
# A product's name is stored once (products); its images refer to it by row number.
_WITH_NAMES = "FROM images i JOIN products p USING (request_id, row_number)"
# The f-strings below join constant fragments only; every value is a bound parameter.
_IMAGES_PAGE = (
    "SELECT i.image_id, row_number, i.serial_number, p.product_name, i.position, i.input_url,"  # noqa: S608
    " i.output_url, i.status, i.error_code, i.error_message, i.input_bytes, i.output_bytes, i.width,"
    " i.height, i.output_format AS format, i.output_quality AS quality, i.ssim"
    f" {_WITH_NAMES} WHERE request_id = $1 AND {_OWNED} AND (row_number, i.position) > ($3, $4)"
    " ORDER BY row_number, i.position LIMIT $5"
)
_OUTPUT_IMAGES = (
    "SELECT row_number, i.serial_number, p.product_name, i.position, i.input_url, i.output_url,"  # noqa: S608
    # Images stored before formats existed (migration 0007) were all JPEG.
    " coalesce(i.output_format, 'jpeg') AS output_format"
    f" {_WITH_NAMES} WHERE request_id = $1 AND {_OWNED} ORDER BY row_number, i.position"
)


class AsyncpgProgressQueries:
    """The queries over one pool (plain reads and progress streams each get their own)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def request_status(self, tenant_id: str, request_id: UUID) -> RequestRow | None:
        row = await self._pool.fetchrow(_STATUS, request_id, tenant_id, WINDOW_SECONDS)
        return None if row is None else RequestRow(**dict(row))

    async def images_page(
        self, tenant_id: str, request_id: UUID, after: tuple[int, int] | None, limit: int
    ) -> list[ImageRow]:
        row_after, pos_after = after or (-1, -1)
        rows = await self._pool.fetch(_IMAGES_PAGE, request_id, tenant_id, row_after, pos_after, limit)
        return [ImageRow(**dict(r)) for r in rows]

    async def output_images(self, tenant_id: str, request_id: UUID) -> list[OutputImage]:
        rows = await self._pool.fetch(_OUTPUT_IMAGES, request_id, tenant_id)
        return [OutputImage(**dict(r)) for r in rows]
