"""The FastAPI app every HTTP service is: resources that arrive in the lifespan, problems, the edge.

A service builds its app in three steps (see the package docstring): `service_app(...)`, its own
routers and innermost middleware, then `install_edge(...)`, which adds the outermost layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, create_model

from ..api_access import NoKeys, install_cors, install_docs_policy
from ..metrics import install_metrics
from .problems import (
    COMMON_SLUGS,
    install_problem_handlers,
    install_problem_openapi,
    problem,
    problem_responses,
)

SettingsT = TypeVar("SettingsT")
ResourcesT = TypeVar("ResourcesT")
# Opens what the routes need (pools, producers, tasks) and closes it; tests pass one yielding fakes.
ResourceFactory = Callable[[SettingsT], AbstractAsyncContextManager[ResourcesT]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' http: https: data:; frame-ancestors 'none'",
}


def service_app(
    settings: SettingsT,
    connect: ResourceFactory[SettingsT, ResourcesT],
    *,
    title: str,
    description: str,
    version: str = "1.0.0",
    slugs: Mapping[int, str] = COMMON_SLUGS,
    titles: Mapping[int, str] | None = None,
    field_rules: Mapping[str, str] | None = None,
) -> FastAPI:
    """An app whose lifespan opens `connect(settings)` into `app.state.resources`, with problem answers.

    The app serves from its first second: `connect` must not wait for PostgreSQL or Kafka (routes
    answer 503 until they are back). Until the resources bring a `key_store`, every key is refused.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with connect(settings) as resources:
            app.state.resources = resources
            key_store = getattr(resources, "key_store", None)
            if key_store is not None:
                app.state.key_store = key_store
            yield

    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    app.state.settings = settings
    app.state.key_store = NoKeys()
    install_problem_handlers(app, slugs=slugs, titles=titles, field_rules=field_rules)
    install_problem_openapi(app)
    return app


def install_edge(
    app: FastAPI, *, service: str, cors_origins: str = "", cors_methods: Sequence[str] = ("GET",)
) -> None:
    """The outermost middleware, added after the service's own: docs policy, security headers, CORS, metrics.

    Metrics go last (outermost) so that every answer is counted, refusals by inner layers included.
    """
    install_docs_policy(app)
    app.middleware("http")(security_headers)
    install_cors(app, cors_origins, list(cors_methods))
    install_metrics(app, service)


async def security_headers(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def readiness_model(checks: Sequence[str]) -> type[BaseModel]:
    """The `Readiness` answer naming each check, e.g. {"status": "ok", "database": "ok"}."""
    fields: dict[str, Any] = dict.fromkeys(("status", *checks), (Literal["ok"], "ok"))
    return create_model("Readiness", **fields)


def health_router(checks: Sequence[str], *, readiness_doc: str) -> APIRouter:
    """GET /healthz (alive) and GET /readyz, which awaits `app.state.resources.readiness()`.

    `readiness()` returns {check name: reachable}; any False is a 503 naming what is unreachable.
    """
    router = APIRouter()
    readiness = readiness_model(checks)

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """The process is alive (nothing else is checked)."""
        return Health()

    async def readyz(request: Request) -> Any:
        results: dict[str, bool] = await request.app.state.resources.readiness()
        down = [name for name, ok in results.items() if not ok]
        if down:
            return problem(503, "not-ready", "Not ready", f"unreachable: {', '.join(down)}", checks=results)
        return readiness()

    router.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        response_model=readiness,
        responses=problem_responses(503),
        description=readiness_doc,
    )
    return router
