"""Turning a request.completed event into webhook deliveries, and one delivery attempt.

The handlers decide (what to schedule, what an answer means); the adapters they are handed act.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog
from pipeline_schemas import RequestCompleted

from .delivery import judge
from .metrics import WEBHOOK_ATTEMPTS
from .repository import AttemptResult, Delivery, DeliveryRepository, Target
from .sender import WebhookSender
from .subscriptions import SubscriptionRepository

log = structlog.get_logger(__name__)


def webhook_body(event: RequestCompleted) -> bytes:
    """The JSON a subscriber receives."""
    return json.dumps(
        {
            "type": event.event_type,
            "event_id": str(event.event_id),
            "request_id": str(event.request_id),
            "status": event.status,
            "total_images": event.total_images,
            "processed_images": event.processed_images,
            "failed_images": event.failed_images,
            "cancelled_images": event.cancelled_images,
            "completed_at": event.completed_at.isoformat(),
            "output_csv_url": event.output_csv_url,
            "output_formats": event.output_formats,
        },
        separators=(",", ":"),
    ).encode()


async def handle_request_completed(
    event: RequestCompleted, repository: DeliveryRepository, subscriptions: SubscriptionRepository
) -> None:
    """The request's own webhook_url plus every global subscription of its tenant."""
    targets: list[Target] = [(None, event.webhook_url)] if event.webhook_url else []
    targets += await subscriptions.targets_of(event.tenant_id)
    if targets:
        await repository.enqueue(event, webhook_body(event), targets)
    log.info("deliveries.scheduled", subscribers=len(targets))


async def attempt_delivery(
    delivery: Delivery,
    sender: WebhookSender,
    repository: DeliveryRepository,
    secrets: Sequence[str],
    schedule: list[float],
) -> None:
    """Send once (signed with each secret) and record the attempt with its verdict."""
    answer = await sender.send(delivery.target_url, secrets, str(delivery.event_id), delivery.payload)
    attempt = delivery.attempts + 1
    outcome = judge(answer.status_code, attempt, schedule, answer.retry_after, permanent=answer.permanent)
    verdict = outcome.verdict.value
    result = AttemptResult(
        answer.status_code, answer.error, answer.latency_ms, answer.excerpt, verdict, outcome.delay
    )
    await repository.record_attempt(delivery, result)
    WEBHOOK_ATTEMPTS.labels("notifier", verdict).inc()
    log.info(
        "webhook.attempted",
        request_id=str(delivery.request_id),
        attempt=attempt,
        status_code=answer.status_code,
        error=answer.error,
        verdict=verdict,
    )
