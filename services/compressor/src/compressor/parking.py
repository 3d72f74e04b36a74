"""Messages set aside until a time, without holding up the rest of their partition (pure).

A parked message keeps its offset unfinished, so the partition's commit point waits for it (a
crash replays it) while the messages behind it are consumed and worked on as usual.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Generic, TypeVar

OwnerT = TypeVar("OwnerT")
T = TypeVar("T")


@dataclass(order=True)
class _Entry(Generic[OwnerT, T]):
    due: float
    seq: int
    owner: OwnerT = field(compare=False)
    item: T = field(compare=False)


class DelayQueue(Generic[OwnerT, T]):
    """Items due at a time; items of a revoked partition (their `owner`) can be dropped at once."""

    def __init__(self) -> None:
        self._heap: list[_Entry[OwnerT, T]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, owner: OwnerT, item: T) -> None:
        heapq.heappush(self._heap, _Entry(due, next(self._seq), owner, item))

    def next_due(self) -> float | None:
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float, limit: int) -> list[tuple[OwnerT, T]]:
        """Up to `limit` items whose time has come, earliest first."""
        out: list[tuple[OwnerT, T]] = []
        while self._heap and self._heap[0].due <= now and len(out) < limit:
            entry = heapq.heappop(self._heap)
            out.append((entry.owner, entry.item))
        return out

    def drop_owner(self, owner: OwnerT) -> int:
        """Forget every item of `owner`; answers how many."""
        kept = [e for e in self._heap if e.owner is not owner]
        dropped = len(self._heap) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
        return dropped

    def clear(self) -> int:
        count = len(self._heap)
        self._heap = []
        return count
