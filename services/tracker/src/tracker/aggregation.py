"""Request progress rules (pure): when a request is finished, and with which status."""

from __future__ import annotations

import re
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


# What a spreadsheet runs as a formula when a cell (or a line) starts with it (OWASP CSV injection).
_FORMULA_PREFIXES = "=+-@\t\r"
# Every character some reader takes as the end of a line: CSV readers split records on CR and LF;
# naive line-based tools (str.splitlines, many log and diff viewers) on these others too.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_FORMULA_AT_LINE_START = re.compile(f"(^|[{_LINE_BREAKS}])(?=[{re.escape(_FORMULA_PREFIXES)}])")


def neutralise_cell(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula: prefix `'` wherever a line of it begins
    with a formula character, at the start and after every embedded line break, since a reader
    that splits lines before it parses quotes would otherwise see a formula there."""
    return _FORMULA_AT_LINE_START.sub(lambda m: m.group(1) + "'", value)
