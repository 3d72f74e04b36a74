"""When to try a failed download again, and how long to wait first (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay_before(self, next_attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor, capped."""
        backoff = min(self.max_seconds, self.base_seconds * 2 ** (next_attempt - 2))
        delay = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not security
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay

    def may_retry(self, attempts_made: int, transient: bool) -> bool:
        return transient and attempts_made < self.max_attempts
