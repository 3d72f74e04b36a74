"""The notifier application: HTTP API plus the consumer and dispatcher as lifespan tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from fastapi import FastAPI, Request
from pipeline_runtime.kafka import AsyncConsumer
from pipeline_runtime.netguard import AddressGuard
from pipeline_schemas import REQUEST_COMPLETED
from pydantic import BaseModel

from .config import Settings
from .repository import AsyncpgDeliveryRepository
from .sender import AiohttpWebhookSender, create_session
from .signing import new_secret
from .worker import consume_completions, dispatch_forever

log = structlog.get_logger(__name__)


class Attempt(BaseModel):
    delivery_id: UUID
    webhook_id: UUID
    target_url: str
    delivery_status: str
    attempt: int | None
    attempted_at: datetime | None
    status_code: int | None
    error: str | None
    latency_ms: float | None


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="imgpipe notifier", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/requests/{request_id}/deliveries", response_model=list[Attempt])
    async def deliveries(request_id: UUID, request: Request) -> Any:
        """Every webhook attempt for a request, with its time, status code and latency."""
        rows = await request.app.state.repository.deliveries_for(request_id)
        return [
            Attempt(
                delivery_id=r["delivery_id"],
                webhook_id=r["event_id"],
                target_url=r["target_url"],
                delivery_status=r["status"],
                attempt=r["attempt"],
                attempted_at=r["attempted_at"],
                status_code=r["status_code"],
                error=r["error"],
                latency_ms=r["latency_ms"],
            )
            for r in rows
        ]

    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    secret = settings.signing_secret.get_secret_value() if settings.signing_secret else None
    if secret is None:
        secret = new_secret()
        log.warning("signing_secret.generated", hint="set NOTIFIER_SIGNING_SECRET so subscribers can verify")
    guard = AddressGuard.from_setting(settings.fetch_allowlist)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
    repository = AsyncpgDeliveryRepository(pool)
    app.state.repository = repository
    consumer = AsyncConsumer(settings.kafka.bootstrap_servers, settings.group_id, [REQUEST_COMPLETED.name])
    session = create_session(guard, settings.request_timeout)
    sender = AiohttpWebhookSender(session, guard)
    tasks = [
        asyncio.create_task(consume_completions(consumer, repository), name="consume"),
        asyncio.create_task(
            dispatch_forever(
                repository,
                sender,
                secret,
                settings.retry_schedule,
                concurrency=settings.max_concurrent_deliveries,
                lease_seconds=settings.request_timeout + 30,
                idle_seconds=settings.dispatch_idle_seconds,
            ),
            name="dispatch",
        ),
    ]
    for task in tasks:
        task.add_done_callback(_crash_loudly)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await consumer.close()
        await session.close()
        await pool.close()


def _crash_loudly(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception():
        log.error("task.crashed", task=task.get_name(), error=repr(task.exception()))
