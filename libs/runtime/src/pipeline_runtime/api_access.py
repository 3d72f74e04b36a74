"""Letting only key holders into an HTTP service: the scope dependency as OpenAPI bearer auth, the
bootstrap key, CORS (off unless configured) and a content policy that keeps /docs working.

The keys themselves are auth.py's; the 401/403 answers are httpkit's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Header, Request, Response, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPBearer
from pydantic import SecretStr

from .auth import DEFAULT_TENANT, SCOPES, AsyncpgKeyStore, Principal, authenticate

log = structlog.get_logger(__name__)

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key (`imgp_...`) sent as `Authorization: Bearer <key>`.",
)
BOOTSTRAP_WAIT = 5.0  # seconds a starting service waits for its bootstrap key before serving anyway
BOOTSTRAP_RETRY = 5.0
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# Swagger UI and ReDoc load their code from jsDelivr and start it with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com;"
    " font-src https://fonts.gstatic.com; img-src 'self' data: https:; worker-src blob:;"
    " frame-ancestors 'none'"
)


class NoKeys:
    """The key store of an app given none: every key is unknown, so every protected route is 401."""

    async def find(self, key: str) -> Principal | None:
        return None


def require(scope: str) -> Any:
    """A dependency giving the calling Principal, refusing callers without `scope` (401/403).

    The key is looked up in `app.state.key_store` (NoKeys until the service's resources arrive).
    """

    async def dependency(
        request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> Principal:
        return await authenticate(authorization, request.app.state.key_store.find, scope)

    return Depends(dependency)


def api_key(scope: str) -> Any:
    """require(scope), declared in the OpenAPI document as bearer authentication."""
    checked = require(scope)

    async def caller(_: Any = Security(BEARER), principal: Principal = checked) -> Principal:
        return principal

    return Depends(caller)


async def ensure_bootstrap_key(
    store: AsyncpgKeyStore, key: SecretStr | None, unavailable: tuple[type[BaseException], ...]
) -> None:
    """Make BOOTSTRAP_API_KEY exist (every scope, default tenant), retrying while PostgreSQL is down."""
    if key is None:
        return
    while True:
        try:
            await store.ensure(key.get_secret_value(), DEFAULT_TENANT, list(SCOPES), "bootstrap")
            return
        except unavailable as exc:
            log.warning("bootstrap_key.retry", error=type(exc).__name__, retry_seconds=BOOTSTRAP_RETRY)
            await asyncio.sleep(BOOTSTRAP_RETRY)


def start_bootstrap(
    store: AsyncpgKeyStore, key: SecretStr | None, unavailable: tuple[type[BaseException], ...]
) -> asyncio.Task[None]:
    """ensure_bootstrap_key as a task; the caller waits up to BOOTSTRAP_WAIT and cancels it at shutdown."""
    return asyncio.create_task(ensure_bootstrap_key(store, key, unavailable), name="bootstrap-key")


def origins(setting: str) -> list[str]:
    return [origin.strip() for origin in setting.split(",") if origin.strip()]


def install_cors(app: FastAPI, setting: str, methods: list[str]) -> None:
    """CORS for the configured origins only (none by default). Keys travel in a header, never a cookie."""
    allowed = origins(setting)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=methods,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Retry-After", "Content-Disposition", "WWW-Authenticate"],
        allow_credentials=False,
        max_age=600,
    )


def install_docs_policy(app: FastAPI) -> None:
    """Let /docs and /redoc load Swagger UI and ReDoc; install it inside the security headers."""

    @app.middleware("http")
    async def docs_policy(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path in DOCS_PATHS:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response
