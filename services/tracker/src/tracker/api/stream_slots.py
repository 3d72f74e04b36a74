"""How many progress streams one key, one tenant and the whole process may hold open at once.

A stream lasts up to TRACKER_EVENTS_MAX_SECONDS; without these caps one tenant could open
hundreds and take the process's sockets and its share of database polls from everyone else. The
counts live in this process: each API replica enforces them on what it serves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from uuid import UUID

from pipeline_runtime.auth import Principal


@dataclass(frozen=True)
class StreamCaps:
    per_key: int
    per_tenant: int
    total: int


class TooManyStreams(Exception):
    """Opening one more stream would pass a cap; `detail` says which."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StreamSlot:
    """One open stream's place in the counts; release() is idempotent."""

    def __init__(self, slots: StreamSlots, key_id: UUID, tenant_id: str) -> None:
        self._slots, self._key_id, self._tenant_id = slots, key_id, tenant_id
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._give_back(self._key_id, self._tenant_id)


class StreamSlots:
    def __init__(self, caps: StreamCaps) -> None:
        self.caps = caps
        self._by_key: Counter[UUID] = Counter()
        self._by_tenant: Counter[str] = Counter()
        self.open = 0

    def take(self, caller: Principal) -> StreamSlot:
        """A slot for one more stream of this caller, or TooManyStreams naming the cap reached."""
        if self._by_key[caller.key_id] >= self.caps.per_key:
            raise TooManyStreams(f"this key already has {self.caps.per_key} progress streams open")
        if self._by_tenant[caller.tenant_id] >= self.caps.per_tenant:
            raise TooManyStreams(f"this tenant already has {self.caps.per_tenant} progress streams open")
        if self.open >= self.caps.total:
            raise TooManyStreams(f"the server already has {self.caps.total} progress streams open")
        self._by_key[caller.key_id] += 1
        self._by_tenant[caller.tenant_id] += 1
        self.open += 1
        return StreamSlot(self, caller.key_id, caller.tenant_id)

    def held(self, caller: Principal) -> tuple[int, int]:
        """(streams of the caller's key, streams of its tenant) open now."""
        return self._by_key[caller.key_id], self._by_tenant[caller.tenant_id]

    def _give_back(self, key_id: UUID, tenant_id: str) -> None:
        self.open -= 1
        self._by_key[key_id] -= 1
        self._by_tenant[tenant_id] -= 1
        # The maps hold only callers with streams open, so they never hold more than `total` entries.
        if self._by_key[key_id] <= 0:
            del self._by_key[key_id]
        if self._by_tenant[tenant_id] <= 0:
            del self._by_tenant[tenant_id]
