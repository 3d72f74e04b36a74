"""The Faust agent: record each image result in PostgreSQL, exactly once in effect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

import structlog
from pipeline_runtime.database import DATABASE_UNAVAILABLE
from pipeline_runtime.metrics import REQUESTS_COMPLETED, RESULTS_RECORDED
from pipeline_schemas import IMAGE_COMPRESSED, ImageCompressed, ImageCompressionFailed, decode
from pydantic import ValidationError

from .repository import Recorded

log = structlog.get_logger(__name__)

ImageResult = ImageCompressed | ImageCompressionFailed
RecordResult = Callable[[ImageResult], Awaitable[Recorded]]


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


async def process_results(
    values: AsyncIterable[bytes], record: RecordResult, on_completed: Callable[[], None]
) -> None:
    """Body of the agent; kept apart from Faust so tests can drive it with any iterable."""
    async for raw in values:
        try:
            event = decode(IMAGE_COMPRESSED.name, raw)
        except (ValidationError, ValueError) as exc:
            log.error("message.undecodable", error=str(exc))
            continue
        with structlog.contextvars.bound_contextvars(
            request_id=str(event.request_id), image_id=str(event.image_id)
        ):
            recorded = await record_until_stored(record, event)  # type: ignore[arg-type]
            RESULTS_RECORDED.labels("tracker", "counted" if recorded.counted else "duplicate").inc()
            log.debug("result.recorded", counted=recorded.counted, type=event.event_type)
            if recorded.completed:
                log.info("request.completed", status=recorded.completed.status)
                REQUESTS_COMPLETED.labels("tracker", recorded.completed.status).inc()
                on_completed()


def register_agents(app: Any, deps: Any) -> Any:
    """Attach the result-recording agent to a Faust app; `deps` is filled in on start."""
    topic = app.topic(IMAGE_COMPRESSED.name, key_type=bytes, value_type=bytes, internal=False)

    @app.agent(topic, name="record-results", concurrency=1)
    async def record_results(stream: AsyncIterable[bytes]) -> None:
        await process_results(stream, lambda e: deps.repository.record_result(e), lambda: deps.relay.wake())

    return record_results
