"""What a running cluster looks like: who leads which partition, who leads the quorum, what lags."""

from __future__ import annotations

import json

from .kafka import admin, data_dir
from .profiles import Profile


def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> node id of its leader (-1 while it has none)."""
    meta = admin(bootstrap).list_topics(topic, timeout=10).topics[topic]
    return {p.id: p.leader for p in meta.partitions.values()}


def under_replicated(bootstrap: str) -> list[str]:
    """Partitions (`topic/partition`) whose in-sync replicas are fewer than their replicas."""
    meta = admin(bootstrap).list_topics(timeout=10)
    return [
        f"{t.topic}/{p.id}"
        for t in meta.topics.values()
        for p in t.partitions.values()
        if len(p.isrs) < len(p.replicas)
    ]


def quorum_leader(profile: Profile) -> int | None:
    """The active controller: the leader of the newest epoch in the nodes' quorum-state files
    (clients are shown a random broker as "controller" under KRaft, so metadata cannot say)."""
    best: tuple[int, int] | None = None
    for node in range(1, profile.brokers + 1):
        state = data_dir(profile, node) / "__cluster_metadata-0" / "quorum-state"
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if data.get("leaderId", -1) >= 0 and (best is None or data["leaderEpoch"] > best[0]):
            best = (data["leaderEpoch"], data["leaderId"])
    return best[1] if best else None
