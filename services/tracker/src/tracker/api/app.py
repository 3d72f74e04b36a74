"""The tracker API's app factory, on the runtime's HTTP kit: routes, progress streams, /media.

/media stays public: output URLs are handed to customers' storefronts, which show them to anyone;
their names are unguessable (request id and a digest of the input URL).
"""

from __future__ import annotations

from fastapi import FastAPI, Security
from fastapi.staticfiles import StaticFiles
from pipeline_runtime.api_access import BEARER
from pipeline_runtime.httpkit import health_router, install_edge, service_app
from pipeline_runtime.stream_slots import StreamLimits, StreamSlots

from ..config import Settings
from .progress_stream import router as progress_stream_router
from .resources import TrackerResources, connect_database
from .routes import FIELD_RULES, router

READINESS_DOC = "Ready when PostgreSQL answers: it is all the status API reads (it uses no broker)."


def create_app(settings: Settings, *, resources: TrackerResources | None = None) -> FastAPI:
    app = service_app(
        settings,
        resources or connect_database,
        title="imgpipe tracker",
        description="Status, images and output CSV of uploads. Every error is application/problem+json.",
        field_rules=FIELD_RULES,
    )
    caps = StreamLimits(settings.events_max_per_key, settings.events_max_per_tenant, settings.events_max_open)
    app.state.stream_slots = StreamSlots(caps)
    app.include_router(router)
    app.include_router(health_router(["database"], readiness_doc=READINESS_DOC))
    app.include_router(progress_stream_router, dependencies=[Security(BEARER)])  # declared: it needs a key
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=settings.media_dir), name="media")
    install_edge(app, service="tracker-api", cors_origins=settings.cors_origins, cors_methods=["GET"])
    return app
