"""AsyncConsumer's rebalance hooks on the real broker: cooperative-sticky, commit on revoke."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture
def topic(bootstrap_servers):
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    name = f"test.compressor.hooks.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


class Member:
    """A consumer that records its hooks and, on revoke, commits one past what it has seen."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.assigned: set[int] = set()
        self.revoked: list[int] = []
        self.seen: dict[int, int] = {}
        self.count = 0
        self.consumer = AsyncConsumer(
            bootstrap,
            group,
            [topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            **{"session.timeout.ms": 6000},
        )

    def _on_assign(self, parts: list[TopicPartition]) -> None:
        self.assigned |= {p.partition for p in parts}

    def _on_revoke(self, parts: list[TopicPartition]) -> list[TopicPartition]:
        out = []
        for p in parts:
            self.assigned.discard(p.partition)
            self.revoked.append(p.partition)
            if p.partition in self.seen:
                out.append(TopicPartition(p.topic, p.partition, self.seen.pop(p.partition) + 1))
        return out

    async def poll_until(self, done: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done():
            for msg in await self.consumer.consume(50, timeout=0.1):
                self.count += 1
                self.seen[msg.partition()] = max(self.seen.get(msg.partition(), -1), msg.offset())


async def test_a_joining_member_takes_some_partitions_and_the_revoked_ones_are_committed(
    bootstrap_servers, topic
):
    producer = AsyncProducer(bootstrap_servers)
    for n in range(40):
        await producer.send(topic, f"key-{n}".encode(), b"v")
    await asyncio.to_thread(producer.close)
    group = f"hooks-{uuid.uuid4().hex[:8]}"
    first, second = Member(bootstrap_servers, group, topic), Member(bootstrap_servers, group, topic)
    await first.consumer.start()
    await first.poll_until(lambda: first.count == 40, 20)
    assert first.assigned == set(range(PARTITIONS))
    seen_before = dict(first.seen)

    await second.consumer.start()

    def settled() -> bool:
        return bool(second.assigned) and first.assigned | second.assigned == set(range(PARTITIONS))

    await asyncio.gather(first.poll_until(settled, 30), second.poll_until(settled, 30))
    assert first.revoked, "cooperative rebalance revoked nothing"
    assert first.assigned | second.assigned == set(range(PARTITIONS))
    assert not first.assigned & second.assigned
    assert set(first.revoked) == second.assigned  # only the moved partitions were revoked

    committed = await asyncio.to_thread(committed_offsets, bootstrap_servers, group, topic)
    for partition in first.revoked:
        if partition in seen_before:
            assert committed[partition] == seen_before[partition] + 1
    await first.consumer.close()
    await second.consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = probe.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        probe.close()
    return {p.partition: p.offset for p in parts}
