"""The Faust agent: record image results in PostgreSQL, exactly once in effect.

Results are taken from the stream in batches, each recorded in one transaction, and acknowledged
only when the next batch is asked for, so only after they are stored. A batch is what has been
delivered and not yet taken (`ready_batches`): a lone result on an idle stack is recorded at once,
and while a transaction runs the results arriving meanwhile gather into the next one. Faust's own
`take(n, within)` waited up to `within` for company and woke on that timer even when idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import asyncpg
import faust
import structlog
from pipeline_runtime.database import DATABASE_UNAVAILABLE
from pipeline_schemas import IMAGE_RESULTS, ImageResult, decode, subscription_names
from pydantic import ValidationError

from .metrics import REQUESTS_COMPLETED, RESULTS_RECORDED
from .repository import Recorded, ResultRecorder

log = structlog.get_logger(__name__)

RecordResults = Callable[[Sequence[ImageResult]], Awaitable[list[Recorded]]]

# The most results one transaction records (a backlog after a restart is taken in such steps).
BATCH_MAX = 500

# Two batches locking the same rows in another order (partitions moving between workers) make
# PostgreSQL abort one transaction; nothing of it was stored, so it is simply run again.
_RETRYABLE = (*DATABASE_UNAVAILABLE, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class Delivered(Protocol):
    """A delivered message as the batcher sees it (Faust's EventT)."""

    @property
    def value(self) -> Any: ...


DeliveredT = TypeVar("DeliveredT", bound=Delivered)


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
    record: RecordResults, events: Sequence[ImageResult], *, max_delay: float = 10.0
) -> list[Recorded]:
    """Retry while PostgreSQL is unreachable: the events are not acknowledged until stored."""
    delay = 0.2
    while True:
        try:
            return await record(events)
        except _RETRYABLE as exc:
            log.warning("database.unavailable", error=repr(exc), retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(max_delay, delay * 2)


async def ready_batches(
    events: AsyncIterable[DeliveredT],
    more_waiting: Callable[[], bool],
    ack: Callable[[DeliveredT], Awaitable[object]],
    max_size: int = BATCH_MAX,
) -> AsyncIterator[list[Any]]:
    """Values in batches of what is already delivered; a batch is acknowledged once the next is asked for.

    The consumer asks for the next batch only after it stored this one, so an acknowledged result
    is a stored one; a crash before that leaves the batch unacknowledged and it is delivered again
    (recording is idempotent). `more_waiting()` tells whether another event is ready at once.
    """
    batch: list[DeliveredT] = []
    async for event in events:
        batch.append(event)
        if len(batch) < max_size and more_waiting():
            continue
        yield [e.value for e in batch]
        for stored in batch:
            await ack(stored)
        batch = []


def decode_result(raw: bytes) -> ImageResult | None:
    """The image result a message holds, or None (logged) for one that is not."""
    try:
        return decode(IMAGE_RESULTS, raw)  # typed: an ImageResult, or it raises
    except (ValidationError, ValueError) as exc:
        log.error("message.undecodable", error=str(exc))
        return None


async def process_batches(
    batches: AsyncIterable[Sequence[bytes]], record: RecordResults, on_completed: Callable[[], None]
) -> None:
    """Body of the agent; kept apart from Faust so tests can drive it with any iterable."""
    async for raws in batches:
        events = [event for event in map(decode_result, raws) if event is not None]
        if not events:
            continue
        outcomes = await record_until_stored(record, events)
        for event, recorded in zip(events, outcomes, strict=True):
            RESULTS_RECORDED.labels("tracker", "counted" if recorded.counted else "duplicate").inc()
            log.debug(
                "result.recorded",
                request_id=str(event.request_id),
                image_id=str(event.image_id),
                counted=recorded.counted,
                type=event.event_type,
            )
            if recorded.completed:
                log.info(
                    "request.completed", request_id=str(event.request_id), status=recorded.completed.status
                )
                REQUESTS_COMPLETED.labels("tracker", recorded.completed.status).inc()
                on_completed()


def more_waiting(stream: faust.StreamT[bytes]) -> Callable[[], bool]:
    """Whether the stream holds another delivered event right now (its channel's queue)."""
    channel = stream.channel
    if not isinstance(channel, faust.ChannelT):  # a stream over a plain iterable: batches of one
        return lambda: False
    queue = channel.queue
    return lambda: not queue.empty()


def register_agents(app: faust.App, deps: AgentDeps) -> faust.types.AgentT:
    """Attach the result-recording agent to a Faust app; `deps` is filled in on start."""
    # The results topic and, while a rename is under way, its deprecated name (schemas/README.md).
    topic = app.topic(*subscription_names(IMAGE_RESULTS), key_type=bytes, value_type=bytes, internal=False)

    async def record(events: Sequence[ImageResult]) -> list[Recorded]:
        return await deps.recorder.record_results(events)

    @app.agent(topic, name="record-results", concurrency=1)
    async def record_results(stream: faust.StreamT[bytes]) -> None:
        # noack: Faust's StreamT type leaves it out, its Stream has it. ready_batches acknowledges.
        manual = cast(faust.Stream[bytes], stream).noack()
        batches = ready_batches(manual.events(), more_waiting(manual), manual.ack)
        await process_batches(batches, record, lambda: deps.relay.wake())

    return record_results
