"""Events about whole requests (uploads)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from .base import EventBase
from .images import OutputFormat

__all__ = ["RequestCompleted", "RequestStatus", "completion_event_id"]

RequestStatus = Literal["completed", "completed_with_errors", "failed", "cancelled"]

_COMPLETION_NAMESPACE = uuid.UUID("6c1f0b2e-8f57-4f57-9d1e-2a9d3b7c4e10")


def completion_event_id(request_id: uuid.UUID) -> uuid.UUID:
    """The one event id of a request's completion, whoever emits it, so re-emissions deduplicate."""
    return uuid.uuid5(_COMPLETION_NAMESPACE, str(request_id))


class RequestCompleted(EventBase):
    """Every image of a request is finished (done, failed or, after a cancel, cancelled). Emitted once."""

    event_type: Literal["request.completed"] = "request.completed"
    schema_version: Literal[1] = 1
    status: RequestStatus
    total_images: int = Field(ge=0)
    processed_images: int = Field(ge=0, description="Images compressed and stored.")
    failed_images: int = Field(ge=0)
    cancelled_images: int = Field(
        default=0, ge=0, description="Images never started because the request was cancelled."
    )
    completed_at: AwareDatetime
    output_csv_url: str = Field(description="Absolute URL of the output CSV.")
    webhook_url: str | None = Field(
        default=None, description="The per-request webhook given at upload, if any."
    )
    output_formats: dict[OutputFormat, Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        description=(
            "Processed images per stored format (a kept original counts under its own format); "
            "each image's own is in the output CSV and the images list. Null when the emitter did "
            "not count them: a cancel that closed the request itself, or a producer before 1.3.0."
        ),
    )
