"""The status routes: request status, its images and the output CSV.

Every route needs an API key with the `read` scope and answers only for
requests of the key's tenant: another tenant's request id is a 404, exactly like an id that does
not exist. Handlers stay thin: the queries read, models.py shapes, csv_output.py renders.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.httpkit import invalid, problem, problem_responses

from .csv_output import OUTPUT_HEADER, render_output_csv
from .models import ImageItem, ImagesPage, RequestStatus
from .queries import ProgressQueries
from .resources import Resources

router = APIRouter()
READ = api_key("read")
MAX_CURSOR_VALUE = 2**31 - 1  # row numbers and positions are PostgreSQL integers
# What each request parameter must be, said the same way whatever pydantic's wording is.
FIELD_RULES = {
    "request_id": "request_id must be a UUID",
    "limit": "limit must be an integer from 1 to 1000",
}


def resources(request: Request) -> Resources:
    held: Resources = request.app.state.resources
    return held


def queries(request: Request) -> ProgressQueries:
    return resources(request).queries


def not_found(request_id: UUID) -> JSONResponse:
    return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")


@router.get(
    "/status/{request_id}",
    response_model=RequestStatus,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_status(
    request_id: UUID, request: Request, caller: Principal = READ
) -> RequestStatus | Response:
    """Progress and outcome of one request; 404 for an id no upload of the caller's tenant returned."""
    row = await queries(request).request_status(caller.tenant_id, request_id)
    return not_found(request_id) if row is None else RequestStatus.of(row)


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
) -> ImagesPage | Response:
    """Every image of a request in input order (row, then position), cursor-paginated."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError:
        errors = [{"row": None, "column": "cursor", "message": "not a cursor this API gave"}]
        return invalid("invalid-cursor", "Invalid cursor", errors)
    if await queries(request).request_status(caller.tenant_id, request_id) is None:
        return not_found(request_id)
    rows = await queries(request).images_page(caller.tenant_id, request_id, after, limit)
    next_cursor = encode_cursor(rows[-1].row_number, rows[-1].position) if len(rows) == limit else None
    return ImagesPage(items=[ImageItem.of(r) for r in rows], next_cursor=next_cursor)


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
async def output_csv(request_id: UUID, request: Request, caller: Principal = READ) -> Response:
    """The input rows with an Output Image Urls column, aligned URL by URL; 409 until finished."""
    status = await queries(request).request_status(caller.tenant_id, request_id)
    if status is None:
        return not_found(request_id)
    if status.completed_at is None:
        return problem(
            409,
            "not-finished",
            "Request not finished",
            "the output CSV exists once every image is finished; poll the status URL",
        )
    images = await queries(request).output_images(caller.tenant_id, request_id)
    return Response(
        render_output_csv(images),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{request_id}.csv"'},
    )
