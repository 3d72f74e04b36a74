"""RFC 9457 problem details: the one error shape of this API."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://imgpipe.dev/problems/"


class FieldError(BaseModel):
    row: int = Field(description="1-based line of the file; the header is line 1.")
    column: str
    message: str


class Problem(BaseModel):
    """An error answer (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json answers."""
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}
