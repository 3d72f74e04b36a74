"""RFC 9457 problem details for the framework's own errors, shared by ingest and the tracker API.

Each service keeps its own `Problem` model (its OpenAPI descriptions differ) and its tables of
problem types, titles and field rules; the rendering and the OpenAPI wiring live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://imgpipe.dev/problems/"
# The framework raises HTTPException with a bare status; these give each its problem type.
COMMON_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json answers (and only that media type)."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        s: {"description": HTTPStatus(s).phrase, "content": {PROBLEM_JSON: {"schema": schema}}}
        for s in statuses
    }


def install_problem_handlers(
    app: FastAPI,
    *,
    slugs: Mapping[int, str] = COMMON_SLUGS,
    titles: Mapping[int, str] | None = None,
    field_rules: Mapping[str, str] | None = None,
) -> None:
    """Render the framework's own errors (404, 405, body parsing, validation, crashes) as problems."""
    titles = titles or {}
    field_rules = field_rules or {}

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        status = exc.status_code
        phrase = HTTPStatus(status).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase.lower()
        response = problem(status, slugs.get(status, str(status)), titles.get(status, phrase), detail)
        response.headers.update(exc.headers or {})
        return response

    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error(e, field_rules) for e in exc.errors()]
        names = ", ".join(dict.fromkeys(e["column"] for e in errors))
        return problem(422, "invalid-request", "Invalid request", f"invalid: {names}", errors=errors)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal_error)


def field_error(error: dict[str, Any], rules: Mapping[str, str]) -> dict[str, Any]:
    """A pydantic error as {row: null, column: field name, message}; the location kind is dropped."""
    loc = [str(part) for part in error.get("loc", ())]
    name = ".".join(loc[1:] if len(loc) > 1 else loc) or "request"
    message = error.get("msg", "invalid")
    if name in rules:
        message = f"{rules[name]} ({message})"
    return {"row": None, "column": name, "message": message}


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("request.failed", error=repr(exc))  # the server logs the traceback itself
    return problem(500, "internal", "Internal Server Error", "an unexpected error occurred")


def install_problem_openapi(app: FastAPI, model: type[BaseModel]) -> None:
    """Generate the OpenAPI document with `model` as Problem (and what it references) in its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(schema.pop("$defs", {}))
            schemas["Problem"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
