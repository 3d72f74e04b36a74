"""The compressors' backlog read from the real broker: latest offsets minus the group's commits."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from ingest.compressor_backlog import KafkaCompressorBacklog
from pipeline_schemas import IMAGE_REQUESTED

pytestmark = pytest.mark.integration


async def test_the_backlog_is_what_the_group_has_not_committed(bootstrap_servers):
    group = f"backlog-test-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group, "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(IMAGE_REQUESTED.name, timeout=10).topics[IMAGE_REQUESTED.name]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(IMAGE_REQUESTED.name, p), timeout=10)[1]
            for p in meta.partitions
        }
        if not any(end >= 3 for end in ends.values()):
            pytest.skip("image.requested holds no partition with 3 records yet (a fresh broker)")
        # Everything committed but the last 3 records of one partition, 0 of the others.
        busy = next(p for p, end in ends.items() if end >= 3)
        commits = [
            TopicPartition(IMAGE_REQUESTED.name, p, end - (3 if p == busy else 0)) for p, end in ends.items()
        ]
        consumer.commit(offsets=commits, asynchronous=False)
    finally:
        consumer.close()

    probe = KafkaCompressorBacklog(bootstrap_servers, group)
    assert await probe.backlog() == 3


async def test_an_unreachable_broker_gives_no_figure():
    probe = KafkaCompressorBacklog("127.0.0.1:9", "compressor")
    assert await probe.backlog() is None
