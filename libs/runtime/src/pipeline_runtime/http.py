"""Legacy: the notifier's and the tracker API's handler set, removed once tracker/notifier adopt
pipeline_runtime.httpkit (the one kit: one Problem, one handler installer, one app factory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api_access import require
from .auth import AuthError
from .database import DATABASE_UNAVAILABLE
from .httpkit.service import SECURITY_HEADERS

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://imgpipe.dev/problems/"


class Problem(BaseModel):
    """An error answer (RFC 9457, application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str


def problem(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*statuses: int, model: type[BaseModel] = Problem) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json answers."""
    return {s: {"model": model, "content": {PROBLEM_JSON: {}}} for s in statuses}


AUTH_RESPONSES = problem_responses(401, 403)
__all__ = ["AUTH_RESPONSES", "Problem", "install_common_handlers", "problem", "problem_responses", "require"]


def install_common_handlers(app: FastAPI) -> None:
    """problem+json for auth, validation and routing errors, and security headers on every answer."""

    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        title = "Unauthorized" if exc.status == 401 else "Forbidden"
        return problem(exc.status, title.lower(), title, exc.detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return problem(422, "invalid-request", "Invalid request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, "http-error", str(exc.detail), str(exc.detail), headers=headers)

    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database.unavailable", error=repr(exc))
        return problem(
            503,
            "unavailable",
            "Service unavailable",
            "the database is unreachable; retry later",
            headers={"Retry-After": "5"},
        )

    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", error=repr(exc))
        return problem(500, "internal", "Internal error", "an unexpected error happened; it was logged")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
