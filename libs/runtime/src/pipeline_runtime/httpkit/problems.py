"""RFC 9457 problem details: the one error shape of every HTTP service, for its errors and the framework's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ..auth import AuthError
from ..database import DATABASE_UNAVAILABLE

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://imgpipe.dev/problems/"
# The framework raises HTTPException with a bare status; these give each its problem type.
COMMON_SLUGS: Mapping[int, str] = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "unsupported-media-type",
}
MAX_LISTED_ERRORS = 100  # a 422 lists at most this many errors; `errors_omitted` counts the rest
RETRY_AFTER_UNAVAILABLE = "5"


class FieldError(BaseModel):
    """One invalid input: a cell of an uploaded file, or a field, header or parameter of the request."""

    row: int | None = Field(description="1-based line of the file (the header is line 1); null for a field.")
    column: str = Field(description="The CSV column, or the name of the form field, header or parameter.")
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
    errors_omitted: int | None = Field(
        None, description="How many more errors were found but not listed (the list is capped)."
    )


def problem(
    status: int, slug: str, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """An application/problem+json answer; `extra` members (errors, checks, ...) are added to the body."""
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def invalid(
    slug: str, title: str, errors: Sequence[Mapping[str, Any]], *, omitted: int = 0, detail: str | None = None
) -> JSONResponse:
    """A 422 listing at most MAX_LISTED_ERRORS errors, with the count of the others when there are any."""
    listed = [dict(e) for e in errors[:MAX_LISTED_ERRORS]]
    omitted += len(errors) - len(listed)
    extra: dict[str, Any] = {"errors": listed}
    if omitted:
        extra["errors_omitted"] = omitted
    if detail is None:
        names = ", ".join(dict.fromkeys(str(e["column"]) for e in listed))
        detail = f"invalid: {names}"
    return problem(422, slug, title, detail, **extra)


def field_problem(column: str, message: str) -> JSONResponse:
    """A 422 for one invalid form field, header or parameter, in the shape of every validation error."""
    return invalid(
        "invalid-request", "Invalid request", [{"row": None, "column": column, "message": message}]
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json answers (and only that media type)."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        s: {"description": HTTPStatus(s).phrase, "content": {PROBLEM_JSON: {"schema": schema}}}
        for s in statuses
    }


def auth_problem(exc: AuthError) -> JSONResponse:
    """401 (with a Bearer challenge) or 403 for a refused key; also for code that runs before routes."""
    title = "Unauthorized" if exc.status == 401 else "Forbidden"
    headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, title.lower(), title, exc.detail, headers=headers)


def unavailable_problem(exc: BaseException) -> JSONResponse:
    """503 with Retry-After while PostgreSQL is unreachable: nothing was recorded, retry later."""
    log.error("database.unavailable", error=repr(exc))
    detail = "the database is unreachable; nothing was recorded, retry later"
    return problem(
        503, "unavailable", "Service unavailable", detail, headers={"retry-after": RETRY_AFTER_UNAVAILABLE}
    )


def install_problem_handlers(
    app: FastAPI,
    *,
    slugs: Mapping[int, str] = COMMON_SLUGS,
    titles: Mapping[int, str] | None = None,
    field_rules: Mapping[str, str] | None = None,
) -> None:
    """Every error as a problem: refused keys, 404/405/413, validation, an unreachable database, crashes.

    `slugs` and `titles` name the framework's bare HTTPExceptions by status; `field_rules` say what
    a request field must be, the same way whatever pydantic's wording is.
    """
    titles = titles or {}
    rules = field_rules or {}

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        error = cast(HTTPException, exc)
        status = error.status_code
        phrase = HTTPStatus(status).phrase
        detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else phrase.lower()
        title = titles.get(status, phrase)
        return problem(status, slugs.get(status, str(status)), title, detail, headers=error.headers)

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        errors = [field_error(e, rules) for e in cast(RequestValidationError, exc).errors()]
        return invalid("invalid-request", "Invalid request", errors)

    async def auth_failed(_: Request, exc: Exception) -> JSONResponse:
        return auth_problem(cast(AuthError, exc))

    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return unavailable_problem(exc)

    # Starlette picks a handler by the exception's class: each is typed for Exception, cast inside.
    app.add_exception_handler(AuthError, auth_failed)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    for exc_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_class, database_unavailable)
    app.add_exception_handler(Exception, internal_error)


def field_error(error: Mapping[str, Any], rules: Mapping[str, str]) -> dict[str, Any]:
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


def install_problem_openapi(app: FastAPI, model: type[BaseModel] = Problem) -> None:
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

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it
