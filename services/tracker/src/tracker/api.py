"""The status API: request status, images, the output CSV and the media files.

Every route but the health checks, the OpenAPI document and /media needs an API key with the
`read` scope, and answers only for requests of the key's tenant: another tenant's request id is a
404, exactly like an id that does not exist. /media stays public: output URLs are handed to
customers' storefronts, which show them to anyone; their names are unguessable (request id and a
digest of the input URL).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

import asyncpg
import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pipeline_runtime.api_access import (
    BEARER,
    BOOTSTRAP_WAIT,
    NoKeys,
    api_key,
    install_cors,
    install_docs_policy,
    start_bootstrap,
)
from pipeline_runtime.auth import AsyncpgKeyStore, Principal
from pipeline_runtime.http import install_common_handlers
from pipeline_runtime.metrics import install_metrics
from pydantic import BaseModel, Field

from .aggregation import Progress, neutralise_cell
from .config import Settings
from .events import router as events_router
from .problems import install_problem_handlers, install_problem_openapi, problem, problem_responses
from .repository import AsyncpgProgressRepository

log = structlog.get_logger(__name__)
router = APIRouter()
READ = api_key("read")

OUTPUT_HEADER = "S. No.,Product Name,Input Image Urls,Output Image Urls"
MAX_CURSOR_VALUE = 2**31 - 1  # row numbers and positions are PostgreSQL integers
CHECK_TIMEOUT = 2.0
# asyncpg's signs of a server that is down, restarting or refusing: answered 503, never 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)

RequestState = Literal["pending", "processing", "completed", "completed_with_errors", "failed"]
ImageState = Literal["pending", "done", "failed"]


class RequestStatus(BaseModel):
    request_id: UUID
    status: RequestState = Field(description="`failed` means every image failed.")
    total_images: int
    processed_images: int = Field(description="Images compressed and stored.")
    failed_images: int = Field(description="Images that could not be processed.")
    progress: float = Field(ge=0, le=1, description="(processed + failed) / total, from 0 to 1.")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = Field(description="Null until every image is finished.")


class ImageError(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. `not_an_image`.")
    message: str


class ImageItem(BaseModel):
    image_id: UUID
    serial_number: int
    product_name: str
    position: int = Field(description="0-based index of the URL within its product row.")
    input_url: str
    output_url: str | None
    status: ImageState
    error: ImageError | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None


class ImagesPage(BaseModel):
    items: list[ImageItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"


class ProgressQueries(Protocol):
    async def request_status(self, request_id: UUID) -> Any: ...
    async def images_page(self, request_id: UUID, after: tuple[int, int] | None, limit: int) -> Any: ...
    async def all_images(self, request_id: UUID) -> Any: ...


@dataclass(frozen=True)
class Resources:
    """What the routes need; tests pass fakes through create_api."""

    repository: ProgressQueries
    database_reachable: Callable[[], Awaitable[bool]]
    key_store: Any = None  # AsyncpgKeyStore; None: the app keeps its own (NoKeys: every key is refused)


ResourceFactory = Callable[[Settings], AbstractAsyncContextManager[Resources]]


def not_found(request_id: UUID) -> JSONResponse:
    return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")


def repo(request: Request) -> ProgressQueries:
    return request.app.state.resources.repository


async def owned_status(request: Request, request_id: UUID, caller: Principal) -> Any:
    """The request's status row, or None when it does not exist or belongs to another tenant."""
    row = await repo(request).request_status(request_id)
    return row if row is not None and row["tenant_id"] == caller.tenant_id else None


@router.get(
    "/status/{request_id}",
    response_model=RequestStatus,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_status(request_id: UUID, request: Request, caller: Principal = READ) -> Any:
    """Progress and outcome of one request; 404 for an id no upload of the caller's tenant returned."""
    row = await owned_status(request, request_id, caller)
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
    """The (row, position) a cursor of ours points after; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError) as exc:
        raise ValueError("not a cursor") from exc
    row_text, _, pos_text = text.partition(":")
    if not (row_text.isdigit() and pos_text.isdigit()):
        raise ValueError("not a cursor")
    row, pos = int(row_text), int(pos_text)
    if row > MAX_CURSOR_VALUE or pos > MAX_CURSOR_VALUE:
        raise ValueError("not a cursor")
    return row, pos


@router.get(
    "/requests/{request_id}/images",
    response_model=ImagesPage,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def list_images(
    request_id: UUID,
    request: Request,
    caller: Annotated[Principal, READ],
    limit: Annotated[int, Query(ge=1, le=1000, description="Images per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> Any:
    """Every image of a request in input order (row, then position), cursor-paginated."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError:
        errors = [{"row": None, "column": "cursor", "message": "not a cursor this API gave"}]
        return problem(422, "invalid-cursor", "Invalid cursor", "invalid: cursor", errors=errors)
    if await owned_status(request, request_id, caller) is None:
        return not_found(request_id)
    rows = await repo(request).images_page(request_id, after, limit)
    items = [image_item(r) for r in rows]
    next_cursor = encode_cursor(rows[-1]["row_number"], rows[-1]["position"]) if len(rows) == limit else None
    return ImagesPage(items=items, next_cursor=next_cursor)


def image_item(r: Any) -> ImageItem:
    error = ImageError(code=r["error_code"], message=r["error_message"] or "") if r["error_code"] else None
    fields = {k: r[k] for k in ImageItem.model_fields if k != "error"}
    return ImageItem(**fields, error=error)


@router.get(
    "/requests/{request_id}/output.csv",
    response_class=Response,
    responses={
        200: {
            "description": f"The output CSV: `{OUTPUT_HEADER}`, one row per product in input order.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 404, 409, 422, 503),
    },
)
async def output_csv(request_id: UUID, request: Request, caller: Principal = READ) -> Any:
    """The input rows with an Output Image Urls column, aligned URL by URL; 409 until finished."""
    status = await owned_status(request, request_id, caller)
    if status is None:
        return not_found(request_id)
    if status["completed_at"] is None:
        return problem(
            409,
            "not-finished",
            "Request not finished",
            "the output CSV exists once every image is finished; poll the status URL",
        )
    rows = await repo(request).all_images(request_id)
    return Response(
        render_output_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{request_id}.csv"'},
    )


def render_output_csv(images: Sequence[Any]) -> str:
    """One record per product in input order, both URL lists always one quoted cell.

    Outputs are aligned with inputs position by position; a failed image leaves its slot empty. A
    product name keeps its embedded line breaks inside one quoted cell, neutralised on every line.
    """
    products: dict[int, list[Any]] = {}
    for image in images:
        products.setdefault(image["row_number"], []).append(image)
    lines = [OUTPUT_HEADER]
    for row_number in sorted(products):
        shots = sorted(products[row_number], key=lambda s: s["position"])
        first = shots[0]
        inputs = ",".join(s["input_url"] for s in shots)
        outputs = ",".join(s["output_url"] or "" for s in shots)
        cells = [str(first["serial_number"]), csv_cell(first["product_name"])]
        lines.append(",".join([*cells, csv_cell(inputs, quote=True), csv_cell(outputs, quote=True)]))
    return "\r\n".join(lines) + "\r\n"


def csv_cell(value: str, *, quote: bool = False) -> str:
    """A neutralised cell, quoted (RFC 4180) when asked or when it holds a separator or line break."""
    value = neutralise_cell(value)
    if quote or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (nothing else is checked)."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Any:
    """Ready when PostgreSQL answers: it is all the status API reads (it uses no broker)."""
    if not await request.app.state.resources.database_reachable():
        return problem(503, "not-ready", "Not ready", "unreachable: database", checks={"database": False})
    return Readiness()


@contextlib.asynccontextmanager
async def connect_database(settings: Settings) -> AsyncIterator[Resources]:
    """min_size=0: the API starts, and answers 503, while PostgreSQL is down."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=10, timeout=5)

    async def database_reachable() -> bool:
        try:
            await asyncio.wait_for(pool.fetchval("SELECT 1"), CHECK_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure means not reachable
            return False
        return True

    keys = AsyncpgKeyStore(pool)
    bootstrap = start_bootstrap(keys, settings.bootstrap_api_key, DATABASE_UNAVAILABLE)
    await asyncio.wait({bootstrap}, timeout=BOOTSTRAP_WAIT)  # serve anyway while PostgreSQL is down
    try:
        yield Resources(AsyncpgProgressRepository(pool, settings.public_base_url), database_reachable, keys)
    finally:
        bootstrap.cancel()
        await asyncio.wait({bootstrap}, timeout=5)
        await close_pool(pool)


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully, but never hang shutdown on a connection lost in an outage."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database.pool_close_timeout", timeout=timeout)
        pool.terminate()


async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database.unavailable", error=repr(exc))
    response = problem(503, "unavailable", "Service unavailable", "the database is unreachable; retry later")
    response.headers["retry-after"] = "5"
    return response


def create_api(settings: Settings, *, resources: ResourceFactory | None = None) -> FastAPI:
    connect = resources or connect_database

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with connect(settings) as ready:
            app.state.resources = ready
            if ready.key_store is not None:
                app.state.key_store = ready.key_store
            yield

    app = FastAPI(
        title="imgpipe tracker",
        version="1.0.0",
        description="Status, images and output CSV of uploads. Every error is application/problem+json.",
        lifespan=lifespan,
    )
    app.state.key_store = NoKeys()  # until the resources bring the real store
    app.include_router(router)
    app.include_router(events_router, dependencies=[Security(BEARER)])  # declared: it needs a key
    install_docs_policy(app)
    install_common_handlers(app)  # 401/403 and security headers; the handlers below take precedence
    install_problem_handlers(app)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
    install_problem_openapi(app)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=settings.media_dir), name="media")
    install_cors(app, settings.cors_origins, ["GET"])
    install_metrics(app, "tracker-api")
    return app
