"""How many long-lived streams one key, one tenant and the whole process may hold open at once.

A progress stream lasts minutes; without these caps one tenant could open hundreds and take a
process's sockets, connections or database polls from everyone else. The counts live in the
process's memory: N processes allow up to N times as many in all. Used by the tracker API's
progress stream and by ingest's gateway that relays it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

Refusal = Literal["key", "tenant", "total"]


@dataclass(frozen=True)
class StreamLimits:
    per_key: int
    per_tenant: int
    total: int


class StreamSlot:
    """One open stream's place in the counts; release() gives it back (once, whatever happens)."""

    def __init__(self, slots: StreamSlots, tenant: Hashable, key: Hashable) -> None:
        self._slots, self._tenant, self._key = slots, tenant, key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots.give_back(self._tenant, self._key)


class StreamSlots:
    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._by_key: Counter[Hashable] = Counter()
        self._by_tenant: Counter[Hashable] = Counter()
        self._total = 0

    def take(self, tenant: Hashable, key: Hashable) -> StreamSlot | Refusal:
        """A slot, or which limit is reached (the tightest first); nothing is taken on refusal."""
        if self._by_key[key] >= self.limits.per_key:
            return "key"
        if self._by_tenant[tenant] >= self.limits.per_tenant:
            return "tenant"
        if self._total >= self.limits.total:
            return "total"
        self._by_key[key] += 1
        self._by_tenant[tenant] += 1
        self._total += 1
        return StreamSlot(self, tenant, key)

    def give_back(self, tenant: Hashable, key: Hashable) -> None:
        self._total -= 1
        for counts, name in ((self._by_key, key), (self._by_tenant, tenant)):
            counts[name] -= 1
            if counts[name] <= 0:
                del counts[name]  # no entry is kept for callers with nothing open: bounded by `total`

    def held(self, tenant: Hashable, key: Hashable) -> tuple[int, int]:
        """(streams of the key, streams of the tenant) open now."""
        return self._by_key[key], self._by_tenant[tenant]

    @property
    def open(self) -> int:
        return self._total
