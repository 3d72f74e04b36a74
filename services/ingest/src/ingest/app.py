"""The ingest FastAPI application factory and the connections it lives with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
import structlog
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from pipeline_runtime.api_access import (
    BEARER,
    BOOTSTRAP_WAIT,
    NoKeys,
    install_cors,
    install_docs_policy,
    start_bootstrap,
)
from pipeline_runtime.auth import AsyncpgKeyStore
from pipeline_runtime.http import install_common_handlers
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.metrics import install_metrics
from pipeline_runtime.outbox import OutboxRelay
from pipeline_schemas import IMAGE_REQUESTED

from .access import KeyStore
from .admin import router as admin_router
from .config import Settings
from .gateway import router as gateway_router
from .limits import BodySizeLimit, TokenBuckets, UploadGate
from .problems import install_problem_handlers, install_problem_openapi, problem
from .repository import AsyncpgUploadRepository, UploadRepository
from .routes import router
from .webpage import router as webpage_router

log = structlog.get_logger(__name__)

# What asyncpg raises when the server is down, restarting or refusing connections: the upload
# is refused whole (its transaction never committed) and the client is told to retry.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
CHECK_TIMEOUT = 2.0


@dataclass(frozen=True)
class Resources:
    """What the routes need from the outside world; tests pass fakes through create_app."""

    repository: UploadRepository
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    wake_relay: Callable[[], None]
    key_store: KeyStore | None = None  # None: the app keeps its own (NoKeys: every key is refused)


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

    app = FastAPI(
        title="imgpipe ingest",
        version="1.0.0",
        description="Accepts product CSVs for image compression. Every error is application/problem+json.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.key_store = NoKeys()  # until the resources bring the real store
    app.state.upload_limiter = TokenBuckets(settings.upload_rate_per_minute, settings.upload_burst)
    app.include_router(router)
    app.include_router(admin_router)
    # The tracker API checks the key the gateway forwards; declared here so the document says so.
    app.include_router(gateway_router, dependencies=[Security(BEARER)])
    app.include_router(webpage_router)
    install_middleware(app, settings)
    install_problem_handlers(app)  # after the common handlers: ingest's own problem shapes win
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
    install_problem_openapi(app)
    install_cors(app, settings.cors_origins, ["GET", "POST", "DELETE"])
    install_metrics(app, "ingest")
    return app


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Innermost first: body limit, docs policy, the upload gate, then security headers on all.

    The body limit raises from `receive` while FastAPI parses the form; it must be innermost, or
    a BaseHTTPMiddleware between them would turn its 413 into FastAPI's 400 "error parsing the body".
    """
    app.add_middleware(BodySizeLimit, max_file_bytes=settings.max_upload_bytes)
    install_docs_policy(app)
    app.add_middleware(UploadGate, path="/upload", unavailable=DATABASE_UNAVAILABLE)
    install_common_handlers(app)


@contextlib.asynccontextmanager
async def connect_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The PostgreSQL pool, the Kafka producer and the outbox relay task.

    min_size=0: the service starts (and reports not ready) while PostgreSQL is down.
    """
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=10, timeout=5)
    producer = AsyncProducer(settings.kafka.bootstrap_servers)
    relay = OutboxRelay(
        pool,
        producer,
        [IMAGE_REQUESTED.name],
        batch_size=settings.relay_batch_size,
        idle_seconds=settings.relay_idle_seconds,
        service="ingest",
    )
    relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
    keys = AsyncpgKeyStore(pool)
    bootstrap = start_bootstrap(keys, settings.bootstrap_api_key, DATABASE_UNAVAILABLE)
    await asyncio.wait({bootstrap}, timeout=BOOTSTRAP_WAIT)  # serve anyway while PostgreSQL is down
    try:
        yield Resources(AsyncpgUploadRepository(pool), lambda: readiness(pool, producer), relay.wake, keys)
    finally:
        await stop_task(bootstrap)
        await stop_task(relay_task)
        await asyncio.to_thread(producer.close)
        await close_pool(pool)


async def stop_task(task: asyncio.Task[None], timeout: float = 10.0) -> None:
    """Cancel until the task is done, within `timeout`.

    Python 3.11's asyncio.wait_for can swallow a cancellation that arrives as its inner wait
    completes (the relay's idle wait after a wake-up does just that), so one cancel() may not
    be enough; a single `await task` would then hang shutdown forever.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while not task.done() and asyncio.get_running_loop().time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.done():
        log.warning("task.stop_timeout", task=task.get_name())


async def readiness(pool: asyncpg.Pool, producer: AsyncProducer) -> dict[str, bool]:
    """Both checks at once, each bounded, so /readyz answers within a few seconds."""
    database, kafka = await asyncio.gather(database_reachable(pool), kafka_reachable(producer))
    return {"database": database, "kafka": kafka}


async def database_reachable(pool: asyncpg.Pool) -> bool:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False
    return True


async def kafka_reachable(producer: AsyncProducer) -> bool:
    try:
        return await asyncio.to_thread(producer.has_broker, CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001
        return False


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully, but never hang shutdown on a connection lost in an outage."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database.pool_close_timeout", timeout=timeout)
        pool.terminate()


async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database.unavailable", error=repr(exc))
    response = problem(
        503,
        "unavailable",
        "Service unavailable",
        "the database is unreachable; nothing was recorded, retry later",
    )
    response.headers["retry-after"] = "5"
    return response
