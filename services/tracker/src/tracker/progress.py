"""Request progress rules (pure): when a request is finished, and with which status.

Shared by the worker, which decides completions with them, and the API, which reports progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_schemas import completion_event_id

__all__ = ["Progress", "completion_event_id"]


@dataclass(frozen=True)
class Progress:
    total: int
    processed: int
    failed: int
    cancelled: int = 0  # images a cancel took out before they were admitted
    cancelling: bool = False

    @property
    def finished(self) -> bool:
        return self.processed + self.failed + self.cancelled >= self.total

    @property
    def status(self) -> str:
        if not self.finished:
            return "processing" if self.processed + self.failed else "pending"
        if self.cancelling:
            return "cancelled"
        if self.failed == 0:
            return "completed"
        return "failed" if self.processed == 0 else "completed_with_errors"

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else (self.processed + self.failed + self.cancelled) / self.total
