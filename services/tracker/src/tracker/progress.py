"""Request progress rules (pure): when a request is finished, and with which status.

Shared by the worker, which decides completions with them, and the API, which reports progress.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

_COMPLETION_NAMESPACE = uuid.UUID("6c1f0b2e-8f57-4f57-9d1e-2a9d3b7c4e10")


@dataclass(frozen=True)
class Progress:
    total: int
    processed: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.processed + self.failed >= self.total

    @property
    def status(self) -> str:
        if not self.finished:
            return "processing" if self.processed + self.failed else "pending"
        if self.failed == 0:
            return "completed"
        return "failed" if self.processed == 0 else "completed_with_errors"

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else (self.processed + self.failed) / self.total


def completion_event_id(request_id: UUID) -> UUID:
    """The one event id of a request's completion, so every re-emission deduplicates."""
    return uuid.uuid5(_COMPLETION_NAMESPACE, str(request_id))
