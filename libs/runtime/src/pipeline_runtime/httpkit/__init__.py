"""The HTTP service kit: everything ingest, the tracker API and the notifier share, in one place.

Build an app in three steps (ingest/app.py is the worked example)::

    from pipeline_runtime.httpkit import health_router, install_edge, service_app

    def create_app(settings: Settings, *, resources: ResourceFactory | None = None) -> FastAPI:
        app = service_app(settings, resources or connect_resources, title="imgpipe x",
                          description="... Every error is application/problem+json.")
        app.include_router(router)                              # the service's routes
        app.include_router(health_router(["database"], readiness_doc="Ready when ..."))
        app.add_middleware(...)                                 # its innermost middleware, if any
        install_edge(app, service="x", cors_origins=settings.cors_origins, cors_methods=["GET"])
        return app

`service_app(settings, connect, *, title, description, version="1.0.0", slugs=, titles=, field_rules=)`
    FastAPI app whose lifespan enters `connect(settings)` (an async context manager factory, the
    `ResourceFactory`) and puts what it yields in `app.state.resources`; if that object has a
    non-None `key_store`, it becomes `app.state.key_store` (until then `NoKeys`: every key 401).
    `app.state.settings = settings`. Installs the problem handlers and the OpenAPI `Problem`.
    `connect` must not wait for PostgreSQL: open pools with `serving_pool` (min_size=0).
`install_edge(app, *, service, cors_origins="", cors_methods=("GET",))`
    Last: docs CSP, security headers, CORS (only configured origins), metrics + GET /metrics.
`health_router(checks, *, readiness_doc)`
    /healthz and /readyz; /readyz awaits `app.state.resources.readiness() -> dict[str, bool]`
    (build it with `run_checks({"database": lambda: database_reachable(pool), ...})`) and answers
    `Readiness` {status, <each check>: "ok"} or 503 problem `not-ready` with `checks`.
`Health`, `readiness_model(checks)`: the models behind those routes.

Problems (RFC 9457, application/problem+json), one model for every service:
`Problem`, `FieldError` (row, column, message); `problem(status, slug, title, detail, headers=None,
**extra)`; `invalid(slug, title, errors, *, omitted=0, detail=None)` (422, lists at most
MAX_LISTED_ERRORS, `errors_omitted` counts the rest); `field_problem(column, message)` (422 for one
field); `problem_responses(*statuses)` (OpenAPI `responses=`); `auth_problem(AuthError)`;
`unavailable_problem(exc)` (503 + Retry-After). `install_problem_handlers` (done by service_app)
answers AuthError 401/403, HTTPException by status (`slugs`/`titles`), request validation 422
(`field_rules` {field: "what it must be"}), every DATABASE_UNAVAILABLE error 503, anything else 500.

Lifecycle, for resource factories: `serving_pool(dsn, *, max_size=10, command_timeout=30)`,
`key_store(pool, bootstrap_key)` (AsyncpgKeyStore with BOOTSTRAP_API_KEY ensured, waited up to
BOOTSTRAP_WAIT then in the background), `stop_task(task)`, `broker_reachable(producer)`,
`run_checks(checks)`. From sibling modules: `pipeline_runtime.database` (DATABASE_UNAVAILABLE,
close_pool, database_reachable), `pipeline_runtime.urls` (MAX_URL_LENGTH, web_url_problem),
`pipeline_runtime.api_access` (api_key(scope), BEARER), `pipeline_runtime.serving` (run the server).
"""

from .lifecycle import broker_reachable, key_store, run_checks, serving_pool, stop_task
from .problems import (
    MAX_LISTED_ERRORS,
    PROBLEM_JSON,
    FieldError,
    Problem,
    auth_problem,
    field_problem,
    install_problem_handlers,
    install_problem_openapi,
    invalid,
    problem,
    problem_responses,
    unavailable_problem,
)
from .service import (
    SECURITY_HEADERS,
    Health,
    ResourceFactory,
    health_router,
    install_edge,
    readiness_model,
    service_app,
)

__all__ = [
    "MAX_LISTED_ERRORS",
    "PROBLEM_JSON",
    "SECURITY_HEADERS",
    "FieldError",
    "Health",
    "Problem",
    "ResourceFactory",
    "auth_problem",
    "broker_reachable",
    "field_problem",
    "health_router",
    "install_edge",
    "install_problem_handlers",
    "install_problem_openapi",
    "invalid",
    "key_store",
    "problem",
    "problem_responses",
    "readiness_model",
    "run_checks",
    "service_app",
    "serving_pool",
    "stop_task",
    "unavailable_problem",
]
