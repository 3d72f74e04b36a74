"""The ingest FastAPI application factory and the connections it lives with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from pipeline_runtime.database import DATABASE_UNAVAILABLE, database_reachable
from pipeline_runtime.httpkit import (
    ResourceFactory,
    broker_reachable,
    health_router,
    install_edge,
    key_store,
    run_checks,
    service_app,
    serving_pool,
    stop_task,
)
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.outbox import OutboxRelay
from pipeline_schemas import IMAGE_REQUESTED

from .access import KeyStore
from .admin import router as admin_router
from .admission import Scheduler
from .admission_store import AsyncpgAdmissionStore
from .cancel import router as cancel_router
from .compressor_backlog import KafkaCompressorBacklog
from .config import Settings
from .control_store import AsyncpgControlStore, ControlStore
from .limits import BodySizeLimit, TokenBuckets, UploadGate, UploadsInProgress
from .portal import mount_portal
from .repository import AsyncpgUploadRepository, UploadRepository
from .routes import FIELD_RULES, router

TITLES = {413: "Upload too large"}
READINESS_DOC = """Ready when PostgreSQL and Kafka both answer; otherwise 503 naming what is unreachable.

Uploads are still accepted while only Kafka is down (events wait in the outbox)."""


@dataclass(frozen=True)
class Resources:
    """What the routes need from the outside world; tests pass fakes through create_app."""

    repository: UploadRepository
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    wake_relay: Callable[[], None]
    key_store: KeyStore | None = None  # None: the app keeps its own (NoKeys: every key is refused)
    control: ControlStore | None = None  # cancel and tenant weights (cancel.py)


def create_app(
    settings: Settings, *, resources: ResourceFactory[Settings, Resources] | None = None
) -> FastAPI:
    app = service_app(
        settings,
        resources or connect_resources,
        title="imgpipe ingest",
        description="Accepts product CSVs for image compression. Every error is application/problem+json.",
        titles=TITLES,
        field_rules=FIELD_RULES,
    )
    app.state.upload_limiter = TokenBuckets(settings.upload_rate_per_minute, settings.upload_burst)
    app.state.uploads_in_progress = UploadsInProgress(settings.max_concurrent_uploads_per_key)
    app.include_router(router)
    app.include_router(health_router(["database", "kafka"], readiness_doc=READINESS_DOC))
    app.include_router(admin_router)
    app.include_router(cancel_router)
    mount_portal(app)
    install_upload_limits(app, settings)
    install_edge(
        app, service="ingest", cors_origins=settings.cors_origins, cors_methods=["GET", "POST", "DELETE"]
    )
    return app


def install_upload_limits(app: FastAPI, settings: Settings) -> None:
    """Innermost first: the body limit, then the upload gate; the edge (install_edge) goes around both.

    The body limit raises from `receive` while FastAPI parses the form; it must be innermost, or
    a BaseHTTPMiddleware between them would turn its 413 into FastAPI's 400 "error parsing the body".
    """
    app.add_middleware(BodySizeLimit, max_file_bytes=settings.max_upload_bytes)
    app.add_middleware(UploadGate, path="/upload", unavailable=DATABASE_UNAVAILABLE)


@contextlib.asynccontextmanager
async def connect_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The PostgreSQL pool, the Kafka producer and the outbox relay task; serves while PostgreSQL is down.

    No command timeout: a 300,000-image upload's COPY grows with the file (bounded by max_rows).
    """
    async with serving_pool(settings.database_url, command_timeout=None) as pool:
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
        group = settings.scheduler.compressor_group
        probe = KafkaCompressorBacklog(settings.kafka.bootstrap_servers, group) if group else None
        scheduler = Scheduler(
            AsyncpgAdmissionStore(settings.database_url), settings.scheduler, relay.wake, probe
        )
        scheduler_task = asyncio.create_task(scheduler.run(), name="scheduler")
        checks = {"database": lambda: database_reachable(pool), "kafka": lambda: broker_reachable(producer)}
        try:
            async with key_store(pool, settings.bootstrap_api_key) as keys:
                control = AsyncpgControlStore(pool, settings.status_base_url)
                yield Resources(
                    AsyncpgUploadRepository(pool), lambda: run_checks(checks), scheduler.wake, keys, control
                )
        finally:
            await stop_task(scheduler_task)
            await stop_task(relay_task)
            if probe is not None:
                await asyncio.to_thread(probe.close)
            await asyncio.to_thread(producer.close)
