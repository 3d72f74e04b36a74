"""Live progress of one request as Server-Sent Events: `GET /requests/{request_id}/events`.

The stream sends `event: progress` with the request's status JSON (the body of
`GET /status/{request_id}`) at once and then whenever it changes, checked against PostgreSQL
every POLL_SECONDS. It ends with `event: done` once every image is finished, or silently after
TRACKER_EVENTS_MAX_SECONDS (clients reconnect, as EventSource does); a `: keep-alive` comment
goes out after KEEPALIVE_SECONDS without a message so that proxies keep the connection open.

Streams are capped per key, per tenant and per process (pipeline_runtime.stream_slots; 429 beyond), and poll
through the resources' `stream_queries`, whose connections plain reads never wait for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.httpkit import problem, problem_responses
from pipeline_runtime.stream_slots import Refusal, StreamSlot, StreamSlots
from starlette.types import Receive, Scope, Send

from ..config import Settings
from .models import RequestStatus
from .resources import Resources

log = structlog.get_logger(__name__)
router = APIRouter()
READ = api_key("read")  # as every other route of the tracker API

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
READ_TIMEOUT = 5.0  # one status query; a stream whose database hangs ends instead
RETRY_MILLISECONDS = 2000  # the reconnection delay suggested to EventSource clients
RETRY_AFTER_SECONDS = "5"  # told to a caller refused for holding too many streams

Status = dict[str, Any]  # the status JSON as sent: RequestStatus.model_dump(mode="json")
StatusReader = Callable[[UUID], Awaitable[Status | None]]


class Clock(Protocol):
    """Time as a stream sees it; tests pass one whose sleeps advance it at once."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class StreamTiming:
    max_seconds: float
    poll_seconds: float = POLL_SECONDS
    keepalive_seconds: float = KEEPALIVE_SECONDS
    clock: Clock = field(default_factory=LoopClock)


def stream_timing(request: Request) -> StreamTiming:
    settings: Settings = request.app.state.settings
    return StreamTiming(settings.events_max_seconds)


def stream_slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.stream_slots
    return slots


def status_reader(request: Request, caller: Principal) -> StatusReader:
    """Reads the caller's request (tenant-scoped in the query) through the streams' own connections."""
    held: Resources = request.app.state.resources
    queries = held.stream_queries

    async def read(request_id: UUID) -> Status | None:
        row = await asyncio.wait_for(queries.request_status(caller.tenant_id, request_id), READ_TIMEOUT)
        return None if row is None else RequestStatus.of(row).model_dump(mode="json")

    return read


def message(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def finished(status: Mapping[str, Any]) -> bool:
    return status["completed_at"] is not None


async def progress_stream(
    read: StatusReader, request_id: UUID, first: Status, timing: StreamTiming
) -> AsyncIterator[str]:
    """The messages of one stream, bounded in time; `first` is the status read before it began."""
    clock = timing.clock
    started = last_sent = clock.now()
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    yield message("progress", first)
    if finished(first):
        yield message("done", first)
        return
    previous = first
    while clock.now() - started < timing.max_seconds:
        await clock.sleep(min(timing.poll_seconds, max(timing.max_seconds - (clock.now() - started), 0)))
        try:
            status = await read(request_id)
        except Exception as exc:  # noqa: BLE001 - the answer has begun: end it; the client reconnects
            log.warning("events.read_failed", request_id=str(request_id), error=repr(exc))
            return
        if status is None:
            return
        now = clock.now()
        if status != previous:
            previous, last_sent = status, now
            yield message("progress", status)
            if finished(status):
                yield message("done", status)
                return
        elif now - last_sent >= timing.keepalive_seconds:
            last_sent = now
            yield ": keep-alive\n\n"
    yield ": time limit reached, reconnect for more\n\n"


def too_many_streams(slots: StreamSlots, reached: Refusal) -> Response:
    limits = slots.limits
    holder, count = {
        "key": ("this key", limits.per_key),
        "tenant": ("this tenant", limits.per_tenant),
        "total": ("the server", limits.total),
    }[reached]
    detail = f"{holder} already has {count} progress streams open; close one or retry later"
    headers = {"retry-after": RETRY_AFTER_SECONDS}
    return problem(429, "too-many-streams", "Too many open streams", detail, headers=headers)


class SlotStreamingResponse(StreamingResponse):
    """A stream that gives its slot back however it ends: finished, timed out or disconnected."""

    def __init__(self, content: AsyncIterator[str], slot: StreamSlot) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


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
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
)
async def request_events(
    request_id: UUID,
    request: Request,
    caller: Principal = READ,
    timing: StreamTiming = Depends(stream_timing),
    slots: StreamSlots = Depends(stream_slots),
) -> Response:
    """Live progress as Server-Sent Events until the request is finished (time-limited, capped per key).

    At most TRACKER_EVENTS_MAX_PER_KEY streams per key, TRACKER_EVENTS_MAX_PER_TENANT per tenant and
    TRACKER_EVENTS_MAX_OPEN in all are open at once; one more is a 429 problem.
    """
    slot = slots.take(caller.tenant_id, caller.key_id)
    if isinstance(slot, str):
        return too_many_streams(slots, slot)
    try:
        read = status_reader(request, caller)
        first = await read(request_id)  # before the stream: 404 and 503 are still proper answers
    except BaseException:
        slot.release()
        raise
    if first is None:
        slot.release()
        return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")
    return SlotStreamingResponse(progress_stream(read, request_id, first, timing), slot)
