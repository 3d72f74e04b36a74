"""Events about whole requests (uploads)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .base import EventBase

__all__ = ["RequestCompleted", "RequestStatus"]

RequestStatus = Literal["completed", "completed_with_errors", "failed"]


class RequestCompleted(EventBase):
    """Every image of a request is finished (done or failed). Emitted once per request."""

    event_type: Literal["request.completed"] = "request.completed"
    schema_version: Literal[1] = 1
    status: RequestStatus
    total_images: int = Field(ge=0)
    processed_images: int = Field(ge=0, description="Images compressed and stored.")
    failed_images: int = Field(ge=0)
    completed_at: AwareDatetime
    output_csv_url: str = Field(description="Absolute URL of the output CSV.")
    webhook_url: str | None = Field(
        default=None, description="The per-request webhook given at upload, if any."
    )
