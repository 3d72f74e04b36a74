"""When to try a failed image again, and how long to wait first (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff; a server's Retry-After is honoured, not shortened.

    A server that asks for more than ``retry_after_max_seconds`` is not retried: the wait would
    hold its partition's commit point (see worker.py) for longer than we accept.
    """

    max_attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    retry_after_max_seconds: float = 120.0

    def delay_before(self, next_attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter, at least the server's Retry-After."""
        backoff = min(self.max_seconds, self.base_seconds * 2 ** (next_attempt - 2))
        delay = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not security
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def may_retry(self, attempts_made: int, transient: bool, retry_after: float | None = None) -> bool:
        if retry_after is not None and retry_after > self.retry_after_max_seconds:
            return False
        return transient and attempts_made < self.max_attempts
