"""The notifier's loops: consume completions into the schedule, and dispatch due deliveries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from pipeline_runtime.kafka import next_offsets
from pipeline_schemas import REQUEST_COMPLETED, decode

from .handlers import attempt_delivery, handle_request_completed
from .repository import Delivery, DeliveryRepository
from .sender import WebhookSender
from .subscriptions import SubscriptionRepository
from .tenant_secrets import TenantSecrets

log = structlog.get_logger(__name__)

BATCH = 100  # messages taken from Kafka per round


class CompletionConsumer(Protocol):
    """The part of pipeline_runtime.kafka.AsyncConsumer the notifier uses."""

    async def consume(self, max_messages: int, timeout: float) -> Sequence[Any]: ...

    async def commit(self, offsets: list[Any]) -> None: ...


async def consume_round(
    consumer: CompletionConsumer, repository: DeliveryRepository, subscriptions: SubscriptionRepository
) -> int:
    """One batch: schedule each event's deliveries, then commit; returns the messages seen.

    Offsets are committed only after the deliveries are persisted, so a crash re-reads the batch
    (enqueueing is idempotent per event and target).
    """
    messages = await consumer.consume(BATCH, timeout=0.5)
    for msg in messages:
        try:
            event = decode(REQUEST_COMPLETED, msg.value() or b"")
        except ValueError as exc:
            log.error("message.undecodable", error=str(exc), offset=msg.offset())
            continue
        with structlog.contextvars.bound_contextvars(request_id=str(event.request_id)):
            await handle_request_completed(event, repository, subscriptions)
    await consumer.commit(next_offsets(messages))
    return len(messages)


async def consume_completions(
    consumer: CompletionConsumer, repository: DeliveryRepository, subscriptions: SubscriptionRepository
) -> None:
    while True:
        await consume_round(consumer, repository, subscriptions)


class Dispatcher:
    """Sends due deliveries; each is its own task, so a slow subscriber never holds up the others."""

    def __init__(
        self,
        repository: DeliveryRepository,
        subscriptions: SubscriptionRepository,
        sender: WebhookSender,
        tenant_secrets: TenantSecrets,
        fallback_secret: str,
        schedule: list[float],
        *,
        concurrency: int,
        lease_seconds: float,
        idle_seconds: float,
    ) -> None:
        self._repository = repository
        self._subscriptions = subscriptions
        self._sender = sender
        self._tenant_secrets = tenant_secrets
        self._fallback_secret = fallback_secret  # only when tenant secrets cannot be stored
        self._schedule = schedule
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._idle = idle_seconds
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A delivery was committed (PostgreSQL NOTIFY, db/migrations/0012): look now, not after idle."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before the claim: a wake-up during it is kept for the next pass
            if not await self.dispatch_due():
                await self._sleep()

    async def _sleep(self) -> None:
        # asyncio.timeout, not wait_for (see pipeline_runtime.outbox: cancellation races).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle):
                await self._wake.wait()

    async def dispatch_due(self) -> int:
        """Claim what is due (up to the free slots) and start sending it; returns how many claimed."""
        free = self._concurrency - len(self._running)
        due = await self._repository.claim_due(free, self._lease) if free > 0 else []
        secrets = await self._subscriptions.secrets_of({d.subscription_id for d in due if d.subscription_id})
        per_tenant = await self._tenant_secrets.signing_secrets(
            {d.tenant_id for d in due if d.subscription_id is None}
        )
        for delivery in due:
            signing = self._secrets_for(delivery, secrets, per_tenant)
            if signing:  # empty: its subscription was deleted meanwhile
                self._start(delivery, signing)
        return len(due)

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _secrets_for(
        self, delivery: Delivery, secrets: dict[Any, str], per_tenant: dict[str, list[str]]
    ) -> list[str]:
        """A subscription's own secret, or the secrets of the delivery's tenant (per-request webhooks)."""
        if delivery.subscription_id is None:
            return per_tenant.get(delivery.tenant_id) or [self._fallback_secret]
        found = secrets.get(delivery.subscription_id)
        return [found] if found else []

    def _start(self, delivery: Delivery, secrets: list[str]) -> None:
        task = asyncio.create_task(
            attempt_delivery(delivery, self._sender, self._repository, secrets, self._schedule)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)


async def supervised(name: str, loop_factory: Callable[[], Awaitable[None]], *, pause: float = 2.0) -> None:
    """Run a loop forever: if it fails (database or broker away), log and start it again."""
    while True:
        try:
            await loop_factory()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must outlive outages
            log.warning("loop.restarting", loop=name, error=repr(exc))
            await asyncio.sleep(pause)
