"""The tracker API's app factory: routes, problem answers, /media, CORS and metrics.

/media stays public: output URLs are handed to customers' storefronts, which show them to anyone;
their names are unguessable (request id and a digest of the input URL).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pipeline_runtime.api_access import BEARER, NoKeys, install_cors, install_docs_policy
from pipeline_runtime.http import install_common_handlers
from pipeline_runtime.metrics import install_metrics

from ..config import Settings
from .problems import install_problem_handlers, install_problem_openapi, problem
from .progress_stream import router as progress_stream_router
from .resources import ResourceFactory, connect_database
from .routes import router
from .stream_slots import StreamCaps, StreamSlots

log = structlog.get_logger(__name__)
# asyncpg's signs of a server that is down, restarting or refusing: answered 503, never 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database.unavailable", error=repr(exc))
    response = problem(503, "unavailable", "Service unavailable", "the database is unreachable; retry later")
    response.headers["retry-after"] = "5"
    return response


def create_app(settings: Settings, *, resources: ResourceFactory | None = None) -> FastAPI:
    connect = resources or connect_database

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with connect(settings) as ready:
            app.state.resources = ready
            if ready.key_store is not None:
                app.state.key_store = ready.key_store
            yield

    app = FastAPI(
        title="imgpipe tracker",
        version="1.0.0",
        description="Status, images and output CSV of uploads. Every error is application/problem+json.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.key_store = NoKeys()  # until the resources bring the real store
    caps = StreamCaps(settings.events_max_per_key, settings.events_max_per_tenant, settings.events_max_open)
    app.state.stream_slots = StreamSlots(caps)
    app.include_router(router)
    app.include_router(progress_stream_router, dependencies=[Security(BEARER)])  # declared: it needs a key
    install_docs_policy(app)
    install_common_handlers(app)  # 401/403 and security headers; the handlers below take precedence
    install_problem_handlers(app)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
    install_problem_openapi(app)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=settings.media_dir), name="media")
    install_cors(app, settings.cors_origins, ["GET"])
    install_metrics(app, "tracker-api")
    return app
