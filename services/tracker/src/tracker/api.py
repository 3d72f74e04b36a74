"""The status API: request status, images, the output CSV and the media files."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from .aggregation import Progress, neutralise_cell
from .config import Settings
from .repository import AsyncpgProgressRepository

PROBLEM_JSON = "application/problem+json"
router = APIRouter()


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


class RequestStatus(BaseModel):
    request_id: UUID
    status: str
    total_images: int
    processed_images: int
    failed_images: int
    progress: float
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class ImageError(BaseModel):
    code: str
    message: str


class ImageItem(BaseModel):
    image_id: UUID
    serial_number: int
    product_name: str
    position: int
    input_url: str
    output_url: str | None
    status: str
    error: ImageError | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None


class ImagesPage(BaseModel):
    items: list[ImageItem]
    next_cursor: str | None


def problem(status: int, slug: str, title: str, detail: str) -> JSONResponse:
    body = {
        "type": f"https://imgpipe.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}


def not_found(request_id: UUID) -> JSONResponse:
    return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")


def repo(request: Request) -> AsyncpgProgressRepository:
    return request.app.state.repository


@router.get("/status/{request_id}", response_model=RequestStatus, responses=problems(404, 422))
async def get_status(request_id: UUID, request: Request) -> Any:
    """Progress and outcome of one request."""
    row = await repo(request).request_status(request_id)
    if row is None:
        return not_found(request_id)
    progress = Progress(row["total_images"], row["processed_images"], row["failed_images"])
    return RequestStatus(
        **{k: row[k] for k in RequestStatus.model_fields if k != "progress"},
        progress=round(progress.fraction, 4),
    )


def encode_cursor(row_number: int, position: int) -> str:
    return base64.urlsafe_b64encode(f"{row_number}:{position}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    row, pos = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
    return int(row), int(pos)


@router.get("/requests/{request_id}/images", response_model=ImagesPage, responses=problems(404, 422))
async def list_images(
    request_id: UUID,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    """Every image of a request, in input order, cursor-paginated."""
    if await repo(request).request_status(request_id) is None:
        return not_found(request_id)
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError:
        return problem(422, "invalid-cursor", "Invalid cursor", "the cursor is not one this API gave")
    rows = await repo(request).images_page(request_id, after, limit)
    items = [image_item(r) for r in rows]
    next_cursor = encode_cursor(rows[-1]["row_number"], rows[-1]["position"]) if len(rows) == limit else None
    return ImagesPage(items=items, next_cursor=next_cursor)


def image_item(r: asyncpg.Record) -> ImageItem:
    error = ImageError(code=r["error_code"], message=r["error_message"] or "") if r["error_code"] else None
    fields = {k: r[k] for k in ImageItem.model_fields if k != "error"}
    return ImageItem(**fields, error=error)


@router.get(
    "/requests/{request_id}/output.csv",
    responses={
        200: {"content": {"text/csv": {}}, "description": "The output CSV."},
        **problems(404, 409, 422),
    },
)
async def output_csv(request_id: UUID, request: Request) -> Any:
    """The input CSV with an Output Image Urls column, aligned URL by URL."""
    status = await repo(request).request_status(request_id)
    if status is None:
        return not_found(request_id)
    if status["completed_at"] is None:
        return problem(
            409, "not-finished", "Request not finished", "the output CSV exists once every image is finished"
        )
    rows = await repo(request).all_images(request_id)
    return Response(
        render_output_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{request_id}.csv"'},
    )


def render_output_csv(images: list[Any]) -> str:
    """One line per product in input order; failed images leave their output slot empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["S. No.", "Product Name", "Input Image Urls", "Output Image Urls"])
    products: dict[int, list[Any]] = {}
    for image in images:
        products.setdefault(image["row_number"], []).append(image)
    for shots in products.values():
        first = shots[0]
        writer.writerow(
            [
                first["serial_number"],
                neutralise_cell(first["product_name"]),
                ",".join(s["input_url"] for s in shots),
                ",".join(s["output_url"] or "" for s in shots),
            ]
        )
    return out.getvalue()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> Any:
    """PostgreSQL is reachable."""
    try:
        await request.app.state.pool.fetchval("SELECT 1")
    except Exception:  # noqa: BLE001
        return problem(503, "not-ready", "Not ready", "the database is unreachable")
    return {"status": "ok", "database": "ok"}


def create_api(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
        app.state.repository = AsyncpgProgressRepository(app.state.pool, settings.public_base_url)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="imgpipe tracker", version="1.0.0", lifespan=lifespan)
    app.include_router(router)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=settings.media_dir), name="media")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "invalid-request", "Invalid request", "; ".join(e["msg"] for e in exc.errors()))

    return app
