"""The notifier application factory and the connections it lives with.

Built with the runtime HTTP kit (pipeline_runtime.httpkit), like ingest: `create_app(settings,
resources=...)` takes the outside world as a factory of `Resources`. The real one opens the
PostgreSQL pool (empty at first, so the service starts and answers 503 on /readyz while
PostgreSQL is down), the Kafka consumer and the webhook session, and runs the consumer and
dispatcher loops; tests hand in fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI
from pipeline_runtime.auth import DEFAULT_TENANT, AsyncpgKeyStore
from pipeline_runtime.database import database_reachable
from pipeline_runtime.httpkit import (
    ResourceFactory,
    health_router,
    install_edge,
    key_store,
    run_checks,
    service_app,
    serving_pool,
    stop_task,
)
from pipeline_runtime.kafka import AsyncConsumer
from pipeline_runtime.netguard import AddressGuard
from pipeline_runtime.wakeups import PgWakeups
from pipeline_schemas import REQUEST_COMPLETED

from .config import Settings
from .deps import KeyStore, Resources
from .repository import AsyncpgDeliveryRepository
from .routes import router
from .sender import AiohttpWebhookSender, create_session
from .signing import new_secret
from .subscriptions import AsyncpgSubscriptionRepository, SecretBox
from .tenant_secrets import AsyncpgTenantSecrets
from .worker import Dispatcher, consume_completions, supervised

log = structlog.get_logger(__name__)

READINESS_DOC = "Ready when PostgreSQL answers; otherwise 503 naming what is unreachable."
# A crashed member's partitions move to the others after 10 s rather than Kafka's 45 s.
CONSUMER_CONFIG: dict[str, Any] = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 3_000}


def create_app(
    settings: Settings, *, resources: ResourceFactory[Settings, Resources] | None = None
) -> FastAPI:
    app = service_app(
        settings,
        resources or connect_resources,
        title="imgpipe notifier",
        description="Webhook subscriptions, the delivery log, dead letters and replay."
        " Every error is application/problem+json.",
    )
    app.include_router(router)
    app.include_router(health_router(["database"], readiness_doc=READINESS_DOC))
    install_edge(app, service="notifier")
    return app


def fallback_secret(settings: Settings) -> str:
    """What signs per-request webhooks when tenant secrets cannot be stored: a secret nobody holds.

    Never a shared one: a secret every tenant knows would let any of them forge another's webhooks.
    """
    if not settings.secrets_key:
        log.warning(
            "signing_secret.unstorable", hint="set NOTIFIER_SECRETS_KEY so tenants can verify webhooks"
        )
    return new_secret()


def first_secrets(settings: Settings) -> dict[str, str]:
    """The default tenant's first secret is the old global one, so its receivers keep verifying."""
    if settings.signing_secret:
        return {DEFAULT_TENANT: settings.signing_secret.get_secret_value()}
    return {}


def database_resources(pool: asyncpg.Pool, settings: Settings, keys: KeyStore | None = None) -> Resources:
    """The PostgreSQL side of the resources: repositories, key store and the readiness check."""
    box = SecretBox(settings.secrets_key.get_secret_value()) if settings.secrets_key else None
    checks = {"database": lambda: database_reachable(pool)}
    return Resources(
        deliveries=AsyncpgDeliveryRepository(pool),
        subscriptions=AsyncpgSubscriptionRepository(pool, box, settings.max_subscriptions_per_tenant),
        tenant_secrets=AsyncpgTenantSecrets(
            pool, box, settings.signing_secret_overlap_seconds, first_secrets(settings)
        ),
        readiness=lambda: run_checks(checks),
        key_store=keys or AsyncpgKeyStore(pool),
    )


@contextlib.asynccontextmanager
async def connect_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The pool, the consumer of request.completed, the webhook session and the two loops."""
    async with (
        serving_pool(settings.database_url) as pool,
        key_store(pool, settings.bootstrap_api_key) as keys,
    ):
        ready = database_resources(pool, settings, keys)
        consumer = AsyncConsumer(
            settings.kafka.bootstrap_servers, settings.group_id, [REQUEST_COMPLETED.name], **CONSUMER_CONFIG
        )
        await consumer.start()
        guard = AddressGuard.from_setting(settings.fetch_allowlist)
        session = create_session(guard, settings.request_timeout)
        dispatcher = Dispatcher(
            ready.deliveries,
            ready.subscriptions,
            AiohttpWebhookSender(session, guard, settings.response_excerpt_bytes),
            ready.tenant_secrets,
            fallback_secret(settings),
            settings.retry_schedule,
            concurrency=settings.max_concurrent_deliveries,
            lease_seconds=settings.request_timeout + 30,
            idle_seconds=settings.dispatch_idle_seconds,
        )
        tasks = [
            asyncio.create_task(
                supervised(
                    "consume", lambda: consume_completions(consumer, ready.deliveries, ready.subscriptions)
                ),
                name="consume-completions",
            ),
            asyncio.create_task(supervised("dispatch", dispatcher.run), name="dispatch"),
            # Committed deliveries (from this or another member) wake the dispatcher at once.
            asyncio.create_task(PgWakeups(pool, "webhook_deliveries", dispatcher.wake).run(), name="wakeups"),
        ]
        try:
            yield ready
        finally:
            for task in tasks:
                await stop_task(task)
            with contextlib.suppress(Exception):
                await consumer.close()
            await session.close()
