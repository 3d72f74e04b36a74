"""Which offsets are safe to commit when messages finish out of order (pure)."""

from __future__ import annotations

import heapq


class PartitionOffsets:
    """Tracks one partition: the committable offset never passes an unfinished message.

    An instance lives as long as this member owns the partition. A message started under
    one ownership and finished after the partition was revoked (and perhaps assigned back)
    finishes on the old, forgotten instance, so it can never move the new owner's offsets.
    """

    def __init__(self) -> None:
        self._pending: list[int] = []  # heap of started, unfinished offsets
        self._finished: set[int] = set()
        self._highest_seen = -1

    def started(self, offset: int) -> None:
        heapq.heappush(self._pending, offset)
        self._highest_seen = max(self._highest_seen, offset)

    def finished(self, offset: int) -> None:
        self._finished.add(offset)
        while self._pending and self._pending[0] in self._finished:
            self._finished.discard(heapq.heappop(self._pending))

    def committable(self) -> int | None:
        """The next offset to commit (one past the last contiguous finished), if any."""
        if self._pending:
            return self._pending[0]
        return self._highest_seen + 1 if self._highest_seen >= 0 else None

    @property
    def in_flight(self) -> int:
        return len(self._pending)


class OffsetTracker:
    """Per (topic, partition) tracking, and what changed since the last commit."""

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, int], PartitionOffsets] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def started(self, topic: str, partition: int, offset: int) -> PartitionOffsets:
        """Record a started message; finish it on the returned ownership, not by name."""
        part = self._partitions.setdefault((topic, partition), PartitionOffsets())
        part.started(offset)
        return part

    def current(self, topic: str, partition: int) -> PartitionOffsets | None:
        return self._partitions.get((topic, partition))

    def owns(self, part: PartitionOffsets) -> bool:
        """Whether `part` is still the current ownership of its partition."""
        return any(current is part for current in self._partitions.values())

    def to_commit(self) -> dict[tuple[str, int], int]:
        """Offsets that moved since they were last reported; marks them reported."""
        moved = {}
        for key, part in self._partitions.items():
            offset = part.committable()
            if offset is not None and offset != self._committed.get(key):
                moved[key] = offset
        self._committed.update(moved)
        return moved

    def release(self, topic: str, partition: int) -> int | None:
        """A revoked partition: forget it, answering the offset still worth committing."""
        part = self._partitions.pop((topic, partition), None)
        committed = self._committed.pop((topic, partition), None)
        offset = part.committable() if part else None
        return offset if offset is not None and offset != committed else None

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self._partitions.values())
