"""HTTP routes of the ingest service: POST /upload."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.httpkit import field_problem, invalid, problem, problem_responses
from pipeline_runtime.urls import MAX_URL_LENGTH, web_url_problem
from pipeline_schemas.images import OutputFormat
from pydantic import BaseModel, Field

from .config import Settings
from .csv_validation import CsvValidationError, parse_upload
from .repository import AcceptedRequest
from .scheduling import Priority
from .uploads import UploadOptions, UploadPlan, file_digest, plan_upload

log = structlog.get_logger(__name__)
# One rule, so that a bad value gives one error: an integer from 1 to 95, or auto.
QUALITY_PATTERN = r"^(auto|[1-9]|[1-8][0-9]|9[0-5])$"

router = APIRouter()
UPLOAD = api_key("upload")

CSV_CONTENT_TYPES = {
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
    "text/comma-separated-values",
    "",
}
FORM_CONTENT_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded", ""}
# What each request field must be, said the same way whatever pydantic's wording is.
FIELD_RULES = {
    "quality": "quality must be an integer from 1 to 95, or auto",
    "format": "format must be one of jpeg, webp, avif",
    "optimize": "optimize must be true or false",
    "progressive": "progressive must be true or false",
    "webhook_url": "webhook_url must be an absolute http or https URL",
    "idempotency-key": "Idempotency-Key must be at most 200 characters",
}
BACKLOG_RETRY_SECONDS = 30


class UploadAccepted(BaseModel):
    request_id: UUID
    status: Literal["pending"] = Field("pending", description="Always `pending` when accepted.")
    total_products: int
    total_images: int
    status_url: str = Field(description="Absolute URL of GET /status/{request_id} (tracker).")
    output_csv_url: str = Field(description="Absolute URL of the output CSV, available once finished.")


class FileTooLarge(Exception):
    pass


async def read_limited(file: UploadFile, limit: int) -> bytes:
    """The whole file in one read of at most limit + 1 bytes: one buffer, not chunks plus their join."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge
    return data


def accepted_body(settings: Settings, accepted: AcceptedRequest) -> dict[str, Any]:
    base = settings.status_base_url.rstrip("/")
    rid = accepted.request_id
    return UploadAccepted(
        request_id=rid,
        total_products=accepted.total_products,
        total_images=accepted.total_images,
        status_url=f"{base}/status/{rid}",
        output_csv_url=f"{base}/requests/{rid}/output.csv",
    ).model_dump(mode="json")


def webhook_url_problem(value: str) -> JSONResponse | None:
    """A 422 for a webhook URL that is not absolute http(s), or that carries credentials."""
    refused = web_url_problem(value)
    return field_problem("webhook_url", f"webhook_url {refused}") if refused else None


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


@router.post(
    "/upload",
    status_code=202,
    response_model=UploadAccepted,
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
async def upload(
    request: Request,
    caller: Annotated[Principal, UPLOAD],
    file: Annotated[
        UploadFile | None, File(description="The product CSV (UTF-8, header row required).")
    ] = None,
    webhook_url: Annotated[
        str | None,
        Form(
            max_length=MAX_URL_LENGTH,
            pattern=r"^[hH][tT][tT][pP][sS]?://",
            description="Absolute http(s) URL called (signed) when the request finishes.",
        ),
    ] = None,
    quality: Annotated[
        str | None,
        Form(
            pattern=QUALITY_PATTERN,
            description="1-95 on the output format's scale (default 50), or `auto`: the lowest "
            "quality whose output keeps SSIM 0.84 against the input (docs/api.md).",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat | None, Form(alias="format", description="Output format: jpeg (default), webp, avif.")
    ] = None,
    optimize: Annotated[
        bool | None, Form(description="JPEG only: optimal Huffman tables, same pixels (default false).")
    ] = None,
    progressive: Annotated[
        bool | None, Form(description="JPEG only: progressive scans, same pixels (default false).")
    ] = None,
    priority: Annotated[
        Priority,
        Form(description="Order of this request's images among your tenant's own; never beyond its share."),
    ] = "normal",
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="The same key with the same file returns the first request; "
            "with another file it is a 409.",
        ),
    ] = None,
) -> Any:
    """Accept a product CSV for compression: 202 once the request and its images are stored."""
    settings: Settings = request.app.state.settings
    if media_type(request.headers.get("content-type")) not in FORM_CONTENT_TYPES:
        return problem(415, "not-multipart", "Not a form upload", "send the CSV as multipart/form-data")
    if file is None:
        return problem(400, "missing-file", "Missing file", "send the CSV in the multipart field `file`")
    # The form is already parsed (and cached) by now; a second `file` part would silently win.
    if len((await request.form()).getlist("file")) > 1:
        return problem(400, "several-files", "Several files", "send exactly one `file` part per upload")
    if webhook_url is not None and (refused := webhook_url_problem(webhook_url)):
        return refused
    if (optimize or progressive) and output_format not in (None, "jpeg"):
        return field_problem("format", "optimize and progressive apply to jpeg output only")
    try:
        data = await read_limited(file, settings.max_upload_bytes)
    except FileTooLarge:
        detail = f"the upload is larger than {settings.max_upload_bytes} bytes"
        return problem(413, "too-large", "Upload too large", detail)
    if media_type(file.content_type) not in CSV_CONTENT_TYPES or b"\x00" in data:
        return problem(415, "not-csv", "Not a CSV file", "the upload must be CSV text (UTF-8)")
    options = UploadOptions(
        settings.default_quality if quality is None else ("auto" if quality == "auto" else int(quality)),
        webhook_url,
        idempotency_key,
        caller.tenant_id,
        output_format or "jpeg",
        # Optimized Huffman tables are asked for, not the default: 11 % fewer bytes, but encoding
        # takes twice as long, 1.22-1.36x the CPU per image with decoding (docs/api.md#optimize).
        bool(optimize),
        bool(progressive),
        priority,
    )
    return await accept(request, data, options)


async def accept(request: Request, data: bytes, options: UploadOptions) -> JSONResponse:
    settings: Settings = request.app.state.settings
    resources = request.app.state.resources
    if options.idempotency_key:
        first = await resources.repository.find_by_idempotency_key(options.tenant_id, options.idempotency_key)
        if first:
            return replay_or_conflict(settings, first, data)
    pending = await resources.repository.pending_images(options.tenant_id)
    if pending >= settings.max_pending_images_per_tenant:
        return backlog_full(settings, pending, None)
    started = time.perf_counter()
    try:
        # Parsing 100,000 rows takes a while: off the event loop, so health checks still answer.
        plan = await asyncio.to_thread(validate_and_plan, settings, data, options)
    except CsvValidationError as exc:
        errors = [{"row": e.row, "column": e.column, "message": e.message} for e in exc.errors]
        found = len(errors) + exc.omitted
        return invalid(
            "invalid-csv",
            "Invalid CSV",
            errors,
            omitted=exc.omitted,
            detail=f"{found} problem(s) found in the file",
        )
    if pending + plan.total_images > settings.max_pending_images_per_tenant:
        return backlog_full(settings, pending, plan.total_images)
    validated = time.perf_counter()
    accepted = await resources.repository.record(plan)
    if accepted.request_id != plan.request_id:  # a concurrent twin with the same key won
        return replay_or_conflict(settings, accepted, data)
    resources.wake_relay()
    log.info(
        "upload.accepted",
        request_id=str(plan.request_id),
        tenant_id=options.tenant_id,
        images=plan.total_images,
        validate_seconds=round(validated - started, 3),
        store_seconds=round(time.perf_counter() - validated, 3),
    )
    return JSONResponse(accepted_body(settings, accepted), status_code=202)


def backlog_full(settings: Settings, pending: int, adding: int | None) -> JSONResponse:
    """429: the tenant's images waiting to be processed are at the cap, or this upload would pass it."""
    cap = settings.max_pending_images_per_tenant
    detail = f"{pending} images of your tenant are waiting to be processed"
    detail += f" and this upload adds {adding}" if adding else ""
    detail += f"; at most {cap} may wait at once. Retry once earlier requests have finished"
    if adding and adding > cap:
        detail += f", and split the file: it alone holds more than {cap} images"
    response = problem(429, "backlog-full", "Too many images waiting", detail)
    response.headers["retry-after"] = str(BACKLOG_RETRY_SECONDS)
    return response


def validate_and_plan(settings: Settings, data: bytes, options: UploadOptions) -> UploadPlan:
    validated = parse_upload(
        data,
        max_rows=settings.max_rows,
        max_errors=settings.max_errors,
        max_name_length=settings.max_product_name_length,
        max_urls_per_row=settings.max_urls_per_row,
    )
    return plan_upload(validated, data, options)


def replay_or_conflict(settings: Settings, first: AcceptedRequest, data: bytes) -> JSONResponse:
    if first.file_sha256 != file_digest(data):
        return problem(
            409,
            "idempotency-conflict",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different file",
        )
    return JSONResponse(accepted_body(settings, first), status_code=202)
