"""A read-only gateway to the tracker API, so that ingest is the one public HTTP entry.

The web page (served by ingest at `/`) reads status, images, the output CSV, the progress stream
and the compressed files through these routes. Each one forwards a GET to the tracker API at
`INGEST_STATUS_BASE_URL` and streams the answer back unchanged (status, body, the headers that
matter). The caller's `Authorization` header is passed through: the tracker API decides who may
read what. Targets are built from fixed path templates, validated ids and quoted path segments
on that base URL only, so no request can make ingest call any other host.

Progress streams use their own connections (a second client), bounded per key, per tenant and in
all (streams.py): however many streams are open, plain reads keep theirs.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pipeline_runtime.auth import authenticate
from pipeline_runtime.httpkit import problem, problem_responses

from .streams import StreamLimits, StreamSlots
from .upstream import forward, lifespan, media_segments, settings_of, tracker_url

GATEWAY_ERRORS = (401, 403, 404, 422, 502, 503, 504)
STREAM_ERRORS = (429, *GATEWAY_ERRORS)
STREAM_RETRY_SECONDS = 30
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}

router = APIRouter(lifespan=lifespan)


def stream_slots(request: Request) -> StreamSlots:
    """The app's counts of open streams, made from the settings on first use."""
    state = request.app.state
    slots: StreamSlots | None = getattr(state, "stream_slots", None)
    if slots is None:
        settings = settings_of(request)
        limits = StreamLimits(
            settings.gateway_max_streams_per_key,
            settings.gateway_max_streams_per_tenant,
            settings.gateway_max_streams,
        )
        slots = state.stream_slots = StreamSlots(limits)
    return slots


@router.get(
    "/status/{request_id}",
    response_class=Response,
    responses={
        200: {"description": "The tracker API's status answer.", "content": JSON_OBJECT},
        **problem_responses(*GATEWAY_ERRORS),
    },
)
async def status(request_id: UUID, request: Request) -> Response:
    """The request's status, read from the tracker API (same answer as its `GET /status/{request_id}`)."""
    return await forward(request, tracker_url(settings_of(request), ["status", str(request_id)]))


@router.get(
    "/requests/{request_id}/images",
    response_class=Response,
    responses={
        200: {"description": "One page of the request's images.", "content": JSON_OBJECT},
        **problem_responses(*GATEWAY_ERRORS),
    },
)
async def images(
    request_id: UUID,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="Images per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """The request's images, page by page, read from the tracker API (same answer and cursors)."""
    target = tracker_url(
        settings_of(request), ["requests", str(request_id), "images"], {"limit": limit, "cursor": cursor}
    )
    return await forward(request, target)


@router.get(
    "/requests/{request_id}/output.csv",
    response_class=Response,
    responses={
        200: {"description": "The output CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(409, *GATEWAY_ERRORS),
    },
)
async def output_csv(request_id: UUID, request: Request) -> Response:
    """The output CSV, read from the tracker API; 409 until the request is finished."""
    target = tracker_url(settings_of(request), ["requests", str(request_id), "output.csv"])
    return await forward(request, target)


@router.get(
    "/requests/{request_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `progress` with the status JSON on every change, then `done`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(*STREAM_ERRORS),
    },
)
async def events(request_id: UUID, request: Request) -> Response:
    """The request's progress as Server-Sent Events, relayed from the tracker API as they come.

    429 when the key (or its tenant) already has as many streams open as it may.
    """
    caller = await authenticate(
        request.headers.get("authorization"), request.app.state.key_store.find, "read"
    )
    slot = stream_slots(request).take(caller.tenant_id, caller.key_id)
    if isinstance(slot, str):
        return too_many_streams(request, slot)
    target = tracker_url(settings_of(request), ["requests", str(request_id), "events"])
    return await forward(request, target, slot=slot)


def too_many_streams(request: Request, reached: str) -> Response:
    limits = stream_slots(request).limits
    headers = {"retry-after": str(STREAM_RETRY_SECONDS)}
    if reached == "total":
        detail = (
            f"this gateway has {limits.total} progress streams open; poll GET /status/{{request_id}} instead"
        )
        return problem(503, "streams-busy", "Gateway busy", detail, headers=headers)
    count = limits.per_key if reached == "key" else limits.per_tenant
    who = "this API key" if reached == "key" else "your tenant"
    detail = (
        f"{who} already has {count} progress streams open (at most {count}); close one, or poll"
        " GET /status/{request_id}"
    )
    return problem(429, "too-many-streams", "Too many progress streams", detail, headers=headers)


@router.get("/media/{path:path}", include_in_schema=False)
async def media(path: str, request: Request) -> Response:
    """A compressed file, read from the tracker API's /media (not in the OpenAPI document, like there)."""
    segments = media_segments(path)
    if segments is None:
        return problem(404, "not-found", "Not Found", "no such file")
    return await forward(request, tracker_url(settings_of(request), ["media", *segments]))
