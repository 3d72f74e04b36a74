"""RFC 9457 problem details: the one error shape of this API, for our errors and the framework's."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://imgpipe.dev/problems/"

# The framework raises HTTPException with a bare status; these give each its problem type.
_SLUGS = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "unsupported-media-type",
}
_TITLES = {413: "Upload too large"}
# What each request field must be, said the same way whatever pydantic's wording is.
FIELD_RULES = {
    "quality": "quality must be an integer from 1 to 95",
    "webhook_url": "webhook_url must be an absolute http or https URL",
    "idempotency-key": "Idempotency-Key must be at most 200 characters",
}


class FieldError(BaseModel):
    """One invalid input: a cell of the file, or a form field or header of the request."""

    row: int | None = Field(description="1-based line of the file (the header is line 1); null for a field.")
    column: str = Field(description="The CSV column, or the name of the form field or header.")
    message: str


class Problem(BaseModel):
    """An error answer (application/problem+json, RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        None, description="Every invalid row or field found (up to a cap); only on validation errors."
    )


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


def install_problem_handlers(app: FastAPI) -> None:
    """Render the framework's own errors (404, 405, body parsing, validation, crashes) as problems."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal_error)


async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase.lower()
    response = problem(status, _SLUGS.get(status, str(status)), _TITLES.get(status, phrase), detail)
    response.headers.update(exc.headers or {})
    return response


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [field_error(e) for e in exc.errors()]
    names = ", ".join(dict.fromkeys(e["column"] for e in errors))
    return problem(422, "invalid-request", "Invalid request", f"invalid: {names}", errors=errors)


def field_error(error: dict[str, Any]) -> dict[str, Any]:
    """A pydantic error as {row: null, column: field name, message}; the location kind is dropped."""
    loc = [str(part) for part in error.get("loc", ())]
    name = ".".join(loc[1:] if len(loc) > 1 else loc) or "request"
    message = error.get("msg", "invalid")
    if name in FIELD_RULES:
        message = f"{FIELD_RULES[name]} ({message})"
    return {"row": None, "column": name, "message": message}


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("request.failed", error=repr(exc))  # the server logs the traceback itself
    return problem(500, "internal", "Internal Server Error", "an unexpected error occurred")


def install_problem_openapi(app: FastAPI) -> None:
    """Generate the OpenAPI document with Problem (and what it references) in its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(schema.pop("$defs", {}))
            schemas["Problem"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
