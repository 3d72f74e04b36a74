"""The notifier's two loops: consume completions into the schedule, and dispatch due deliveries."""

from __future__ import annotations

import asyncio

import structlog
from pipeline_runtime.kafka import AsyncConsumer, next_offsets
from pipeline_schemas import REQUEST_COMPLETED, decode

from .handlers import attempt_delivery, handle_request_completed
from .repository import AsyncpgDeliveryRepository
from .sender import AiohttpWebhookSender

log = structlog.get_logger(__name__)


async def consume_completions(consumer: AsyncConsumer, repository: AsyncpgDeliveryRepository) -> None:
    """Offsets are committed only after the deliveries are persisted."""
    await consumer.start()
    while True:
        messages = await consumer.consume(100, timeout=0.5)
        for msg in messages:
            try:
                event = decode(REQUEST_COMPLETED.name, msg.value())
            except ValueError as exc:
                log.error("message.undecodable", error=str(exc), offset=msg.offset())
                continue
            with structlog.contextvars.bound_contextvars(request_id=str(event.request_id)):
                await handle_request_completed(event, repository)  # type: ignore[arg-type]
        await consumer.commit(next_offsets(messages))


async def dispatch_forever(
    repository: AsyncpgDeliveryRepository,
    sender: AiohttpWebhookSender,
    secret: str,
    schedule: list[float],
    *,
    concurrency: int,
    lease_seconds: float,
    idle_seconds: float,
) -> None:
    """Each delivery is its own task, so a slow subscriber never holds up the others."""
    running: set[asyncio.Task[None]] = set()
    while True:
        free = concurrency - len(running)
        due = await repository.claim_due(free, lease_seconds) if free > 0 else []
        for delivery in due:
            task = asyncio.create_task(attempt_delivery(delivery, sender, repository, secret, schedule))
            running.add(task)
            task.add_done_callback(running.discard)
        if not due:
            await asyncio.sleep(idle_seconds)
