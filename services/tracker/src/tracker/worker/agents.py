"""The Faust agent: record each image result in PostgreSQL, exactly once in effect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Protocol

import faust
import structlog
from pipeline_runtime.database import DATABASE_UNAVAILABLE
from pipeline_schemas import IMAGE_RESULTS, ImageResult, decode, subscription_names
from pydantic import ValidationError

from .metrics import REQUESTS_COMPLETED, RESULTS_RECORDED
from .repository import Recorded, ResultRecorder

log = structlog.get_logger(__name__)

RecordResult = Callable[[ImageResult], Awaitable[Recorded]]


class Relay(Protocol):
    """The completion outbox relay, as far as the agent sees it."""

    def wake(self) -> None: ...


class AgentDeps(Protocol):
    """Filled in when the worker starts; read by the agent for every event."""

    @property
    def recorder(self) -> ResultRecorder: ...

    @property
    def relay(self) -> Relay: ...


async def record_until_stored(
    record: RecordResult, event: ImageResult, *, max_delay: float = 10.0
) -> Recorded:
    """Retry while PostgreSQL is unreachable: the event is not acknowledged until it is stored."""
    delay = 0.2
    while True:
        try:
            return await record(event)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("database.unavailable", error=repr(exc), retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(max_delay, delay * 2)


def decode_result(raw: bytes) -> ImageResult | None:
    """The image result a message holds, or None (logged) for one that is not."""
    try:
        return decode(IMAGE_RESULTS, raw)  # typed: an ImageResult, or it raises
    except (ValidationError, ValueError) as exc:
        log.error("message.undecodable", error=str(exc))
        return None


async def process_results(
    values: AsyncIterable[bytes], record: RecordResult, on_completed: Callable[[], None]
) -> None:
    """Body of the agent; kept apart from Faust so tests can drive it with any iterable."""
    async for raw in values:
        event = decode_result(raw)
        if event is None:
            continue
        with structlog.contextvars.bound_contextvars(
            request_id=str(event.request_id), image_id=str(event.image_id)
        ):
            recorded = await record_until_stored(record, event)
            RESULTS_RECORDED.labels("tracker", "counted" if recorded.counted else "duplicate").inc()
            log.debug("result.recorded", counted=recorded.counted, type=event.event_type)
            if recorded.completed:
                log.info("request.completed", status=recorded.completed.status)
                REQUESTS_COMPLETED.labels("tracker", recorded.completed.status).inc()
                on_completed()


def register_agents(app: faust.App, deps: AgentDeps) -> faust.types.AgentT:
    """Attach the result-recording agent to a Faust app; `deps` is filled in on start."""
    # The results topic and, while a rename is under way, its deprecated name (schemas/README.md).
    topic = app.topic(*subscription_names(IMAGE_RESULTS), key_type=bytes, value_type=bytes, internal=False)

    async def record(event: ImageResult) -> Recorded:
        return await deps.recorder.record_result(event)

    @app.agent(topic, name="record-results", concurrency=1)
    async def record_results(stream: AsyncIterable[bytes]) -> None:
        await process_results(stream, record, lambda: deps.relay.wake())

    return record_results
