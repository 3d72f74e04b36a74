"""The notifier application factory and the connections it lives with.

`create_app(settings, resources=...)` takes the outside world as a factory of `Resources`, as
ingest does: the real one opens the PostgreSQL pool, the Kafka consumer and the HTTP session and
runs the consumer and dispatcher loops; tests hand in fakes. The pool starts empty, so the
service comes up (and answers 503 on /readyz) while PostgreSQL is down, and recovers with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import asyncpg
import structlog
from fastapi import FastAPI
from pipeline_runtime.api_access import BOOTSTRAP_WAIT, NoKeys, install_docs_policy, start_bootstrap
from pipeline_runtime.auth import AsyncpgKeyStore
from pipeline_runtime.database import DATABASE_UNAVAILABLE, create_db_pool
from pipeline_runtime.http import install_common_handlers
from pipeline_runtime.kafka import AsyncConsumer
from pipeline_runtime.metrics import install_metrics
from pipeline_runtime.netguard import AddressGuard
from pipeline_schemas import REQUEST_COMPLETED

from .config import Settings
from .deps import Resources
from .repository import AsyncpgDeliveryRepository
from .routes import router
from .sender import AiohttpWebhookSender, create_session
from .signing import new_secret
from .subscriptions import AsyncpgSubscriptionRepository, SecretBox
from .worker import Dispatcher, consume_completions, supervised

log = structlog.get_logger(__name__)

CHECK_TIMEOUT = 2.0
ResourceFactory = Callable[[Settings], AbstractAsyncContextManager[Resources]]


def create_app(settings: Settings, *, resources: ResourceFactory | None = None) -> FastAPI:
    connect = resources or connect_resources

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with connect(settings) as ready:
            app.state.resources = ready
            if ready.key_store is not None:
                app.state.key_store = ready.key_store
            yield

    app = FastAPI(title="imgpipe notifier", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.key_store = NoKeys()  # until the resources bring the real store
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


def database_resources(
    pool: asyncpg.Pool, settings: Settings, keys: AsyncpgKeyStore | None = None
) -> Resources:
    """The PostgreSQL side of the resources: repositories, key store and the readiness check."""
    box = SecretBox(settings.secrets_key.get_secret_value()) if settings.secrets_key else None
    return Resources(
        deliveries=AsyncpgDeliveryRepository(pool),
        subscriptions=AsyncpgSubscriptionRepository(pool, box, settings.max_subscriptions_per_tenant),
        readiness=lambda: readiness(pool),
        key_store=keys or AsyncpgKeyStore(pool),
    )


@contextlib.asynccontextmanager
async def connect_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The pool, the consumer of request.completed, the webhook session and the two loops."""
    pool = await create_db_pool(settings.database_url, min_size=0)
    keys = AsyncpgKeyStore(pool)
    ready = database_resources(pool, settings, keys)
    bootstrap = start_bootstrap(keys, settings.bootstrap_api_key, DATABASE_UNAVAILABLE)
    await asyncio.wait({bootstrap}, timeout=BOOTSTRAP_WAIT)  # serve anyway while PostgreSQL is down
    # A crashed member's partitions move to the others after 10 s rather than Kafka's 45 s.
    consumer = AsyncConsumer(
        settings.kafka.bootstrap_servers,
        settings.group_id,
        [REQUEST_COMPLETED.name],
        **{"session.timeout.ms": 10_000, "heartbeat.interval.ms": 3_000},
    )
    await consumer.start()
    guard = AddressGuard.from_setting(settings.fetch_allowlist)
    session = create_session(guard, settings.request_timeout)
    dispatcher = Dispatcher(
        ready.deliveries,
        ready.subscriptions,
        AiohttpWebhookSender(session, guard, settings.response_excerpt_bytes),
        signing_secret(settings),
        settings.retry_schedule,
        concurrency=settings.max_concurrent_deliveries,
        lease_seconds=settings.request_timeout + 30,
        idle_seconds=settings.dispatch_idle_seconds,
    )
    tasks = [
        asyncio.create_task(
            supervised(
                "consume", lambda: consume_completions(consumer, ready.deliveries, ready.subscriptions)
            )
        ),
        asyncio.create_task(supervised("dispatch", dispatcher.run)),
        bootstrap,
    ]
    try:
        yield ready
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await consumer.close()
        await session.close()
        await close_pool(pool)


async def readiness(pool: asyncpg.Pool) -> dict[str, bool]:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return {"database": False}
    return {"database": True}


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully, but never hang shutdown on a connection lost in an outage."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database.pool_close_timeout", timeout=timeout)
        pool.terminate()
