"""The notifier application: HTTP API plus the consumer and dispatcher as lifespan tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI
from pipeline_runtime.api_access import install_docs_policy
from pipeline_runtime.auth import SCOPES, AsyncpgKeyStore
from pipeline_runtime.database import create_db_pool
from pipeline_runtime.http import install_common_handlers
from pipeline_runtime.kafka import AsyncConsumer
from pipeline_runtime.metrics import install_metrics
from pipeline_runtime.netguard import AddressGuard
from pipeline_schemas import REQUEST_COMPLETED

from .config import Settings
from .repository import AsyncpgDeliveryRepository
from .routes import router
from .sender import AiohttpWebhookSender, create_session
from .signing import new_secret
from .subscriptions import AsyncpgSubscriptionRepository, SecretBox
from .worker import Dispatcher, consume_completions, supervised

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="imgpipe notifier", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(router)

    install_docs_policy(app)
    install_common_handlers(app)
    install_metrics(app, "notifier")
    return app


def signing_secret(settings: Settings) -> str:
    if settings.signing_secret:
        return settings.signing_secret.get_secret_value()
    log.warning("signing_secret.generated", hint="set NOTIFIER_SIGNING_SECRET so subscribers can verify")
    return new_secret()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    guard = AddressGuard.from_setting(settings.fetch_allowlist)
    pool = await create_db_pool(settings.database_url)
    box = SecretBox(settings.secrets_key.get_secret_value()) if settings.secrets_key else None
    app.state.pool = pool
    app.state.key_store = AsyncpgKeyStore(pool)
    if settings.bootstrap_api_key:
        await app.state.key_store.ensure(
            settings.bootstrap_api_key.get_secret_value(), "default", list(SCOPES), "bootstrap"
        )
    app.state.repository = repository = AsyncpgDeliveryRepository(pool)
    app.state.subscriptions = subscriptions = AsyncpgSubscriptionRepository(pool, box)
    # A crashed member's partitions move to the others after 10 s rather than Kafka's 45 s.
    timeouts: dict[str, Any] = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 3_000}
    consumer = AsyncConsumer(
        settings.kafka.bootstrap_servers, settings.group_id, [REQUEST_COMPLETED.name], **timeouts
    )
    await consumer.start()
    session = create_session(guard, settings.request_timeout)
    dispatcher = Dispatcher(
        repository,
        subscriptions,
        AiohttpWebhookSender(session, guard),
        signing_secret(settings),
        settings.retry_schedule,
        concurrency=settings.max_concurrent_deliveries,
        lease_seconds=settings.request_timeout + 30,
        idle_seconds=settings.dispatch_idle_seconds,
    )
    tasks = [
        asyncio.create_task(
            supervised("consume", lambda: consume_completions(consumer, repository, subscriptions))
        ),
        asyncio.create_task(supervised("dispatch", dispatcher.run)),
    ]
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
