"""HTTP routes of the ingest service: POST /upload and health checks."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import structlog
from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .config import Settings
from .csv_validation import CsvValidationError, parse_upload
from .problems import problem, problem_responses
from .repository import AcceptedRequest, UploadRepository
from .uploads import UploadOptions, file_digest, plan_upload

log = structlog.get_logger(__name__)
router = APIRouter()

CSV_CONTENT_TYPES = {
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
    "text/comma-separated-values",
    "",
}


class UploadAccepted(BaseModel):
    request_id: UUID
    status: str = Field("pending", description="Always `pending` when accepted.")
    total_products: int
    total_images: int
    status_url: str
    output_csv_url: str


class TooLarge(Exception):
    pass


async def read_limited(file: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await file.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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


def is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(value) <= 2048


@router.post(
    "/upload",
    status_code=202,
    response_model=UploadAccepted,
    responses=problem_responses(400, 409, 413, 415, 422, 503),
)
async def upload(
    request: Request,
    file: Annotated[UploadFile | None, File(description="The product CSV.")] = None,
    webhook_url: Annotated[str | None, Form(description="Called when the request finishes.")] = None,
    quality: Annotated[int | None, Form(ge=1, le=95, description="JPEG quality, default 50.")] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Accept a product CSV for compression."""
    settings: Settings = request.app.state.settings
    if file is None:
        return problem(400, "missing-file", "Missing file", "send the CSV in the multipart field `file`")
    if webhook_url is not None and not is_web_url(webhook_url):
        return problem(
            422,
            "invalid-webhook-url",
            "Invalid webhook URL",
            "webhook_url must be an absolute http or https URL",
        )
    try:
        data = await read_limited(file, settings.max_upload_bytes)
    except TooLarge:
        return problem(
            413, "too-large", "Upload too large", f"the file is larger than {settings.max_upload_bytes} bytes"
        )
    if (file.content_type or "").split(";")[0].strip().lower() not in CSV_CONTENT_TYPES or b"\x00" in data:
        return problem(415, "not-csv", "Not a CSV file", "the upload must be CSV text (UTF-8)")
    options = UploadOptions(quality or settings.default_quality, webhook_url, idempotency_key)
    return await accept(request, data, options)


async def accept(request: Request, data: bytes, options: UploadOptions) -> JSONResponse:
    settings: Settings = request.app.state.settings
    repository: UploadRepository = request.app.state.repository
    if options.idempotency_key:
        first = await repository.find_by_idempotency_key(options.tenant_id, options.idempotency_key)
        if first:
            return replay_or_conflict(settings, first, data)
    try:
        validated = parse_upload(data, max_rows=settings.max_rows, max_errors=settings.max_errors)
    except CsvValidationError as exc:
        errors = [{"row": e.row, "column": e.column, "message": e.message} for e in exc.errors]
        return problem(
            422, "invalid-csv", "Invalid CSV", f"{len(errors)} problem(s) found in the file", errors=errors
        )
    plan = plan_upload(validated, data, options)
    accepted = await repository.record(plan)
    if accepted.request_id != plan.request_id:
        return replay_or_conflict(settings, accepted, data)
    request.app.state.relay_wake()
    log.info("upload.accepted", request_id=str(plan.request_id), images=plan.total_images)
    return JSONResponse(accepted_body(settings, accepted), status_code=202)


def replay_or_conflict(settings: Settings, first: AcceptedRequest, data: bytes) -> JSONResponse:
    if first.file_sha256 != file_digest(data):
        return problem(
            409,
            "idempotency-conflict",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different file",
        )
    return JSONResponse(accepted_body(settings, first), status_code=202)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> Any:
    """PostgreSQL and Kafka are reachable."""
    checks = await request.app.state.readiness()
    if not all(checks.values()):
        return problem(
            503, "not-ready", "Not ready", f"unreachable: {[k for k, v in checks.items() if not v]}"
        )
    return {"status": "ok", **dict.fromkeys(checks, "ok")}
