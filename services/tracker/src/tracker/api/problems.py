"""RFC 9457 problem details: the one error shape of the status API, for our errors and the framework's."""

from __future__ import annotations

from fastapi import FastAPI
from pipeline_runtime import problems as shared
from pipeline_runtime.problems import problem, problem_responses
from pydantic import BaseModel, Field

__all__ = ["Problem", "install_problem_handlers", "install_problem_openapi", "problem", "problem_responses"]

_SLUGS = {**shared.COMMON_SLUGS}
_TITLES = {}
# What each request parameter must be, said the same way whatever pydantic's wording is.
FIELD_RULES = {
    "request_id": "request_id must be a UUID",
    "limit": "limit must be an integer from 1 to 1000",
}


class FieldError(BaseModel):
    """One invalid parameter (the same shape as ingest's validation errors; row is always null here)."""

    row: int | None = Field(None, description="Always null: no file is involved.")
    column: str = Field(description="The name of the path or query parameter.")
    message: str


class Problem(BaseModel):
    """An error answer (application/problem+json, RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        None, description="Every invalid parameter; only on validation errors."
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render the framework's own errors (404, 405, body parsing, validation, crashes) as problems."""
    shared.install_problem_handlers(app, slugs=_SLUGS, titles=_TITLES, field_rules=FIELD_RULES)


def install_problem_openapi(app: FastAPI) -> None:
    """Generate the OpenAPI document with this service's Problem in its components."""
    shared.install_problem_openapi(app, Problem)
