"""Hand-written fakes of the tracker API's resources: queries over dicts, and an app around them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from tracker.api import create_app
from tracker.api.csv_output import OutputImage
from tracker.api.queries import ImageRow, RequestRow
from tracker.api.resources import KeyStore, Resources
from tracker.config import Settings

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"


def image(
    row: int,
    position: int,
    url: str,
    output: str | None = None,
    *,
    status: str = "pending",
    serial: int | None = None,
    name: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    output_format: str = "jpeg",
) -> ImageRow:
    """An image of the product on line `row`; one with an output is done (as `output_format`)."""
    return ImageRow(
        image_id=uuid4(),
        row_number=row,
        serial_number=row - 1 if serial is None else serial,
        product_name=f"Product {row - 1}" if name is None else name,
        position=position,
        input_url=url,
        output_url=output,
        status="done" if output else status,
        error_code=error_code,
        error_message=error_message,
        input_bytes=1000 if output else None,
        output_bytes=400 if output else None,
        width=64 if output else None,
        height=48 if output else None,
        format=output_format if output else None,
    )


def as_output(images: list[ImageRow]) -> list[OutputImage]:
    """What the output CSV reads of these images."""
    return [
        OutputImage(
            i.row_number, i.serial_number, i.product_name, i.position, i.input_url, i.output_url, i.format
        )
        for i in images
    ]


def request_row(rid: UUID, total: int, processed: int, failed: int, tenant: str = "default") -> RequestRow:
    """A request row whose status follows its counts, as the worker leaves it."""
    finished = processed + failed >= total
    status = "pending" if processed + failed == 0 else "processing"
    if finished:
        status = "completed" if failed == 0 else ("failed" if processed == 0 else "completed_with_errors")
    return RequestRow(
        request_id=rid,
        tenant_id=tenant,
        status=status,
        total_images=total,
        processed_images=processed,
        failed_images=failed,
        admitted_images=total,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=processed + failed),
        completed_at=T0 + timedelta(minutes=1) if finished else None,
    )


@dataclass
class FakeQueries:
    """ProgressQueries over dicts, tenant-scoped like the SQL; every call is recorded."""

    requests: dict[UUID, RequestRow] = field(default_factory=dict)
    images: dict[UUID, list[ImageRow]] = field(default_factory=dict)
    failure: Exception | None = None
    calls: list[tuple[str, str, UUID]] = field(default_factory=list)

    def add(
        self,
        images: list[ImageRow],
        processed: int = 0,
        failed: int = 0,
        finished: bool = False,
        tenant: str = "default",
    ) -> UUID:
        rid = uuid4()
        row = request_row(rid, len(images), processed, failed, tenant)
        self.requests[rid] = dataclasses.replace(row, completed_at=T0 if finished else None)
        self.images[rid] = images
        return rid

    def _owned(self, tenant_id: str, request_id: UUID) -> bool:
        row = self.requests.get(request_id)
        return row is not None and row.tenant_id == tenant_id

    async def request_status(self, tenant_id: str, request_id: UUID) -> RequestRow | None:
        self.calls.append(("request_status", tenant_id, request_id))
        if self.failure:
            raise self.failure
        return self.requests[request_id] if self._owned(tenant_id, request_id) else None

    async def images_page(
        self, tenant_id: str, request_id: UUID, after: tuple[int, int] | None, limit: int
    ) -> list[ImageRow]:
        self.calls.append(("images_page", tenant_id, request_id))
        if not self._owned(tenant_id, request_id):
            return []
        ordered = sorted(self.images[request_id], key=lambda i: (i.row_number, i.position))
        start = after or (-1, -1)
        return [i for i in ordered if (i.row_number, i.position) > start][:limit]

    async def output_images(self, tenant_id: str, request_id: UUID) -> list[OutputImage]:
        self.calls.append(("output_images", tenant_id, request_id))
        if not self._owned(tenant_id, request_id):
            return []
        return as_output(sorted(self.images[request_id], key=lambda i: (i.row_number, i.position)))


@dataclass
class ScriptedQueries(FakeQueries):
    """Each status read returns the next state of its request's script (the last one repeats)."""

    scripts: dict[UUID, list[RequestRow]] = field(default_factory=dict)
    reads: int = 0
    gate: asyncio.Event | None = None  # when set up, every read waits for it

    def script(self, *states: tuple[int, int, int], tenant: str = "default") -> UUID:
        rid = uuid4()
        self.scripts[rid] = [request_row(rid, *state, tenant=tenant) for state in states]
        return rid

    async def request_status(self, tenant_id: str, request_id: UUID) -> RequestRow | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure:
            raise self.failure
        script = self.scripts.get(request_id)
        if not script or script[0].tenant_id != tenant_id:
            return None
        return script.pop(0) if len(script) > 1 else script[0]


@dataclass
class Readiness:
    database: bool = True

    async def __call__(self) -> dict[str, bool]:
        return {"database": self.database}


def build_app(
    queries: FakeQueries,
    keys: KeyStore,
    settings: Settings,
    *,
    stream_queries: FakeQueries | None = None,
    readiness: Readiness | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def resources(_: Settings) -> AsyncIterator[Resources]:
        yield Resources(queries, stream_queries or queries, readiness or Readiness(), keys)

    return create_app(settings, resources=resources)


@contextlib.asynccontextmanager
async def serve(app: FastAPI, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app through its lifespan, called in-process."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tracker.test", headers=headers or {}
        ) as client:
            yield client


def assert_problem(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body
