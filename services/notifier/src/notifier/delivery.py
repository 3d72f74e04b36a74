"""Delivery decisions (pure): what an answer means, and when to try again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    delay: float | None = None  # seconds until the next attempt when RETRY


def judge(
    status_code: int | None,
    attempt: int,
    schedule: list[float],
    retry_after: float | None = None,
    *,
    permanent: bool = False,
) -> Outcome:
    """2xx is delivered; network errors, 408, 429 and 5xx are retried on the schedule; others die."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(Verdict.DELIVERED)
    retryable = not permanent and (status_code is None or status_code in (408, 429) or status_code >= 500)
    if not retryable or attempt > len(schedule):
        return Outcome(Verdict.DEAD)
    return Outcome(Verdict.RETRY, next_delay(schedule[attempt - 1], retry_after))


def next_delay(planned: float, retry_after: float | None) -> float:
    """The planned delay with ±20 % jitter; a subscriber's Retry-After is honoured as a floor."""
    delay = planned * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return max(delay, retry_after) if retry_after is not None else delay
