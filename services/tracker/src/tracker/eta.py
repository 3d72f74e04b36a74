"""How long a request still needs (pure): its remaining images over its own recent completion rate.

The fair scheduler gives every active request its share of the compressors, so the rate at which
this request's images finished lately already is its fair share; dividing what remains by it is
an estimate that accounts for everybody else's work without knowing about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WINDOW_SECONDS = 30.0  # completions older than this say little about the current share
MIN_FINISHED = 3  # fewer completions in the window give no rate worth showing


@dataclass(frozen=True)
class RecentCompletions:
    """The request's images finished within the window, as PostgreSQL saw them at `now`."""

    count: int
    first_at: datetime | None  # the earliest finished_at in the window
    now: datetime


def completion_rate(recent: RecentCompletions) -> float | None:
    """Images per second since the window's first completion; None without enough of them.

    The first completion marks the start of the interval, so it is not counted in it; measuring
    to `now` (not to the last completion) lets a stall lower the rate instead of hiding.
    """
    if recent.count < MIN_FINISHED or recent.first_at is None:
        return None
    elapsed = (recent.now - recent.first_at).total_seconds()
    return None if elapsed <= 0 else (recent.count - 1) / elapsed


def eta_seconds(remaining: int, recent: RecentCompletions) -> float | None:
    """Seconds until the remaining images are finished at the recent rate; None when unknown or done."""
    if remaining <= 0:
        return None
    rate = completion_rate(recent)
    return None if rate is None else round(remaining / rate, 1)
