"""RFC 9457 problem details: the one error shape of this API, for our errors and the framework's."""

from __future__ import annotations

from fastapi import FastAPI
from pipeline_runtime import problems as shared
from pipeline_runtime.problems import problem, problem_responses
from pydantic import BaseModel, Field

__all__ = ["Problem", "install_problem_handlers", "install_problem_openapi", "problem", "problem_responses"]

_SLUGS = {**shared.COMMON_SLUGS, 413: "too-large", 415: "unsupported-media-type"}
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


def install_problem_handlers(app: FastAPI) -> None:
    """Render the framework's own errors (404, 405, body parsing, validation, crashes) as problems."""
    shared.install_problem_handlers(app, slugs=_SLUGS, titles=_TITLES, field_rules=FIELD_RULES)


def install_problem_openapi(app: FastAPI) -> None:
    """Generate the OpenAPI document with this service's Problem in its components."""
    shared.install_problem_openapi(app, Problem)
