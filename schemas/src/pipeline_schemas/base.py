"""The envelope every event carries."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["EventBase", "new_event_id", "utc_now"]


def new_event_id() -> UUID:
    """A fresh, random event id."""
    return uuid4()


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class EventBase(BaseModel):
    """Fields shared by every event on every topic.

    Readers ignore unknown fields so that producers may add optional fields
    within a schema version without breaking older consumers.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(
        default_factory=new_event_id,
        description="Unique per event; consumers deduplicate on it.",
    )
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When the fact happened (UTC).")
    request_id: UUID = Field(
        description="The upload this event belongs to; the Kafka key and the log correlation id."
    )
    tenant_id: str = Field(default="default", description="Tenant that owns the request.", min_length=1)
