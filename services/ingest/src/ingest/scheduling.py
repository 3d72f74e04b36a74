"""Fair admission (pure): how many images of which request enter image.requested this round.

The scarce thing is the in-flight window: images admitted but not yet finished (downloading,
compressing, waiting in Kafka, or waiting for a retry). The window is sized so a newly admitted
image has about `target_latency` of work ahead of it (`window_size`), and its free slots are
handed out one at a time by weighted deficit round robin over *held slots*:

- across tenants: the next slot goes to the tenant with the largest deficit, i.e. the smallest
  (slots held + 1) / weight; with every tenant backlogged each holds window * weight / total
  weight, and throughput follows the held slots (Little's law). Ties go round robin, from the
  round's `turn`, so no tenant is favoured by its name;
- within a tenant: requests of the highest priority present with work queued take the tenant's
  slots first (priority never crosses tenants: it is consulted only after the tenant is chosen);
  among them, the request holding the fewest slots, oldest first on a tie (round robin).

The deficit is recomputed each round from facts in PostgreSQL (what each request holds), not
carried in memory: a scheduler that takes over after a crash needs no state. And it charges
retries to their own request: an image waiting for its next attempt is still in flight, so it
keeps holding one of its request's (and its tenant's) slots until the tracker records its result.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

Priority = Literal["high", "normal", "low"]
PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}
Policy = Literal["fair", "fifo"]


@dataclass(frozen=True)
class ActiveRequest:
    """One unfinished request as the scheduler sees it."""

    request_id: UUID
    tenant_id: str
    queued: int  # waiting for admission (0 once cancelled)
    in_flight: int  # admitted, not finished (retries included)
    priority: Priority = "normal"
    age: int = 0  # smaller is older: the order requests were accepted in


@dataclass(frozen=True)
class Admission:
    request_id: UUID
    count: int


def window_size(throughput: float, target_latency: float, slack: int, maximum: int) -> int:
    """In-flight images: `target_latency` seconds of work at `throughput` images/s, plus `slack`.

    In flight also counts images the compressors have finished but the tracker has not recorded
    yet (Kafka, its commit interval): `slack` covers them, so the compressors never wait for
    work, and it is the whole window while nothing has been measured (idle, or at start).
    """
    return min(maximum, slack + round(throughput * target_latency))


def free_slots(window: int, requests: Iterable[ActiveRequest]) -> int:
    return max(0, window - sum(r.in_flight for r in requests))


def owed_slots(
    requests: Iterable[ActiveRequest], weights: Mapping[str, int], window: int, default_weight: int = 1
) -> int:
    """Slots tenants below their share of the window are owed, whether or not the window is full.

    A tenant that arrives while others fill the window would otherwise wait for their images to
    finish before its first one is admitted. Admitting what it is owed at once overshoots the
    window by at most its share, once; the tenants above their share then get nothing until the
    total is back under the window.
    """
    held: dict[str, int] = {}
    queued: dict[str, int] = {}
    for r in requests:
        held[r.tenant_id] = held.get(r.tenant_id, 0) + r.in_flight
        queued[r.tenant_id] = queued.get(r.tenant_id, 0) + r.queued
    total = sum(max(1, weights.get(t, default_weight)) for t in held)
    owed = 0
    for tenant, h in held.items():
        share = window * max(1, weights.get(tenant, default_weight)) // max(1, total)
        owed += max(0, min(share - h, queued[tenant]))
    return owed


def plan_fifo(requests: Iterable[ActiveRequest], batch: int) -> list[Admission]:
    """The old behaviour, kept as a setting for comparison: oldest request first, no window."""
    plan, left = [], batch
    for req in sorted(requests, key=lambda r: r.age):
        take = min(left, req.queued)
        if take:
            plan.append(Admission(req.request_id, take))
            left -= take
    return plan


@dataclass
class _Tenant:
    weight: int
    held: int
    order: int  # round-robin position of this tenant in this round
    # heap of (priority rank, held, age, index): the request with work queued to serve next
    requests: list[tuple[int, int, int, int]] = field(default_factory=list)
    queued: dict[int, int] = field(default_factory=dict)  # index -> images still queued

    def key(self) -> tuple[float, int]:
        return ((self.held + 1) / self.weight, self.order)


def plan_fair(
    requests: Iterable[ActiveRequest],
    weights: Mapping[str, int],
    free: int,
    *,
    turn: int = 0,
    default_weight: int = 1,
) -> list[Admission]:
    """Hand out `free` slots; returns the admissions, in the order the slots were given."""
    reqs = list(requests)
    tenants = _tenants(reqs, weights, default_weight, turn)
    given: dict[UUID, int] = {}
    heap = [(t.key(), tid) for tid, t in tenants.items() if t.requests]
    heapq.heapify(heap)
    while free > 0 and heap:
        _, tid = heapq.heappop(heap)
        tenant = tenants[tid]
        req = _next_request(tenant, reqs)
        given[req.request_id] = given.get(req.request_id, 0) + 1
        tenant.held += 1
        free -= 1
        if tenant.requests:
            heapq.heappush(heap, (tenant.key(), tid))
    return [Admission(rid, n) for rid, n in given.items()]


def _tenants(
    reqs: list[ActiveRequest], weights: Mapping[str, int], default_weight: int, turn: int
) -> dict[str, _Tenant]:
    names = sorted({r.tenant_id for r in reqs})
    # Rotating the tie-break order each round is the "round robin" among equally served tenants.
    tenants = {
        tid: _Tenant(max(1, weights.get(tid, default_weight)), 0, (i - turn) % len(names))
        for i, tid in enumerate(names)
    }
    for index, r in enumerate(reqs):
        tenant = tenants[r.tenant_id]
        tenant.held += r.in_flight
        if r.queued > 0:
            tenant.requests.append((PRIORITY_RANK[r.priority], r.in_flight, r.age, index))
            tenant.queued[index] = r.queued
    for tenant in tenants.values():
        heapq.heapify(tenant.requests)
    return tenants


def _next_request(tenant: _Tenant, reqs: list[ActiveRequest]) -> ActiveRequest:
    """The tenant's next request: best priority, then fewest held, then oldest."""
    rank, held, age, index = heapq.heappop(tenant.requests)
    tenant.queued[index] -= 1
    if tenant.queued[index] > 0:
        heapq.heappush(tenant.requests, (rank, held + 1, age, index))
    return reqs[index]
