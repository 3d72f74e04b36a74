"""Live progress of one request as Server-Sent Events: `GET /requests/{request_id}/events`.

The stream sends `event: progress` with the request's status JSON (the body of
`GET /status/{request_id}`) at once and then whenever it changes, checked against PostgreSQL
every POLL_SECONDS. It ends with `event: done` once every image is finished, or silently after
TRACKER_EVENTS_MAX_SECONDS (clients reconnect, as EventSource does); a `: keep-alive` comment
goes out after KEEPALIVE_SECONDS without a message so that proxies keep the connection open.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pydantic_core import to_jsonable_python

from .aggregation import Progress
from .config import Settings
from .problems import problem, problem_responses

log = structlog.get_logger(__name__)
router = APIRouter()
READ = api_key("read")  # as every other route of the tracker API

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
READ_TIMEOUT = 5.0  # one status query; a stream whose database hangs ends instead
RETRY_MILLISECONDS = 2000  # the reconnection delay suggested to EventSource clients
STATUS_FIELDS = ("total_images", "processed_images", "failed_images")

StatusReader = Callable[[UUID], Awaitable["dict[str, Any] | None"]]


@dataclass(frozen=True)
class StreamLimits:
    max_seconds: float
    poll_seconds: float = POLL_SECONDS
    keepalive_seconds: float = KEEPALIVE_SECONDS


@functools.cache
def _limits_from_environment() -> StreamLimits:
    return StreamLimits(Settings().events_max_seconds)


def stream_limits(request: Request) -> StreamLimits:
    """From the app's settings when it keeps them, else from the environment the API runs with."""
    settings = getattr(request.app.state, "settings", None)
    if isinstance(settings, Settings):
        return StreamLimits(settings.events_max_seconds)
    return _limits_from_environment()


def status_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON of GET /status/{request_id} for a row of the requests table (same field order)."""
    progress = Progress(*(row[k] for k in STATUS_FIELDS))
    body = {
        "request_id": row["request_id"],
        "status": row["status"],
        **{k: row[k] for k in STATUS_FIELDS},
        "progress": round(progress.fraction, 4),
        **{k: row[k] for k in ("created_at", "updated_at", "completed_at")},
    }
    return to_jsonable_python(body)


def status_reader(request: Request, caller: Principal) -> StatusReader:
    """Reads the caller's request: another tenant's is as unknown as one that does not exist."""
    repository = request.app.state.resources.repository

    async def read(request_id: UUID) -> dict[str, Any] | None:
        row = await asyncio.wait_for(repository.request_status(request_id), READ_TIMEOUT)
        if row is None or row["tenant_id"] != caller.tenant_id:
            return None
        return status_body(row)

    return read


def message(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def finished(status: Mapping[str, Any]) -> bool:
    return status["completed_at"] is not None


async def progress_stream(
    read: StatusReader, request_id: UUID, first: dict[str, Any], limits: StreamLimits
) -> AsyncIterator[str]:
    """The messages of one stream, bounded in time; `first` is the status read before it began."""
    loop = asyncio.get_running_loop()
    started = last_sent = loop.time()
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    yield message("progress", first)
    if finished(first):
        yield message("done", first)
        return
    previous = first
    while loop.time() - started < limits.max_seconds:
        await asyncio.sleep(min(limits.poll_seconds, max(limits.max_seconds - (loop.time() - started), 0)))
        try:
            status = await read(request_id)
        except Exception as exc:  # noqa: BLE001 - the answer has begun: end it; the client reconnects
            log.warning("events.read_failed", request_id=str(request_id), error=repr(exc))
            return
        if status is None:
            return
        now = loop.time()
        if status != previous:
            previous, last_sent = status, now
            yield message("progress", status)
            if finished(status):
                yield message("done", status)
                return
        elif now - last_sent >= limits.keepalive_seconds:
            last_sent = now
            yield ": keep-alive\n\n"
    yield ": time limit reached, reconnect for more\n\n"


@router.get(
    "/requests/{request_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "Server-Sent Events: `progress` (data: the status JSON) at once and on every change,"
                " `done` when finished, `: keep-alive` comments every 15 s."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def request_events(
    request_id: UUID,
    request: Request,
    caller: Principal = READ,
    limits: StreamLimits = Depends(stream_limits),
) -> Response:
    """Live progress as Server-Sent Events until the request is finished (time-limited)."""
    read = status_reader(request, caller)
    first = await read(request_id)  # before the stream: 404 and 503 are still proper answers
    if first is None:
        return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")
    return StreamingResponse(
        progress_stream(read, request_id, first, limits),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
