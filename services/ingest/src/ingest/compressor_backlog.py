"""Kafka adapter of the scheduler: how many image.requested records the compressors have not done.

The backlog is the compressor group's lag on image.requested (latest offset minus committed
offset, over every partition): records waiting, being worked on, and finished within the last
commit interval. It is the work ahead of a newly admitted image, which is what the window bounds;
images finished by a compressor but not yet recorded by the tracker are not in it, so a slow
tracker does not shrink what the compressors get.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from pipeline_schemas import IMAGE_REQUESTED

log = structlog.get_logger(__name__)
REQUEST_TIMEOUT = 2.0


class BacklogProbe(Protocol):
    async def backlog(self) -> int | None: ...


class KafkaCompressorBacklog:
    def __init__(self, bootstrap_servers: str, group_id: str) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap_servers})
        self._group = group_id

    async def backlog(self) -> int | None:
        """The group's lag on image.requested, or None when Kafka does not answer in time."""
        try:
            return await asyncio.to_thread(self._lag)
        except Exception as exc:  # noqa: BLE001 - no figure: the scheduler falls back to its window
            log.warning("scheduler.backlog_unknown", error=repr(exc))
            return None

    def _lag(self) -> int:
        topic = IMAGE_REQUESTED.name
        partitions = self._admin.list_topics(topic, timeout=REQUEST_TIMEOUT).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        latest = self._admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in wanted}, request_timeout=REQUEST_TIMEOUT
        )
        ends = {tp.partition: future.result(REQUEST_TIMEOUT).offset for tp, future in latest.items()}
        request = ConsumerGroupTopicPartitions(self._group, wanted)
        found = self._admin.list_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT)
        committed = found[self._group].result(REQUEST_TIMEOUT).topic_partitions
        lag = 0
        for tp in committed:
            # No commit yet (negative offset): the group reads from the beginning of what is kept.
            start = tp.offset if tp.offset >= 0 else 0
            lag += max(0, ends.get(tp.partition, 0) - start)
        return lag
