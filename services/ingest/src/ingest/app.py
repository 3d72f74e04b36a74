"""The ingest FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.outbox import OutboxRelay
from pipeline_schemas import IMAGE_REQUESTED

from .config import Settings
from .problems import problem
from .repository import AsyncpgUploadRepository
from .routes import router

log = structlog.get_logger(__name__)


# What asyncpg raises when the server is down or restarting: the upload is refused whole.
DATABASE_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="imgpipe ingest", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(router)
    install_error_handlers(app)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
    producer = AsyncProducer(settings.kafka.bootstrap_servers)
    relay = OutboxRelay(
        pool,
        producer,
        [IMAGE_REQUESTED.name],
        batch_size=settings.relay_batch_size,
        idle_seconds=settings.relay_idle_seconds,
    )
    app.state.repository = AsyncpgUploadRepository(pool)
    app.state.relay_wake = relay.wake
    app.state.readiness = lambda: readiness(pool, producer)
    relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield
    finally:
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await asyncio.to_thread(producer.close)
        await pool.close()


async def readiness(pool: asyncpg.Pool, producer: AsyncProducer) -> dict[str, bool]:
    database = kafka = True
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), 2)
    except Exception:  # noqa: BLE001
        database = False
    try:
        kafka = await asyncio.to_thread(producer.has_broker, 2.0)
    except Exception:  # noqa: BLE001
        kafka = False
    return {"database": database, "kafka": kafka}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        errors = [
            {"row": 0, "column": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
        ]
        return problem(422, "invalid-request", "Invalid request", "the request is malformed", errors=errors)

    async def database_unavailable(_: Request, exc: Exception):
        log.error("database.unavailable", error=str(exc))
        return problem(
            503,
            "unavailable",
            "Service unavailable",
            "the database is unreachable; nothing was recorded, retry later",
        )

    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
