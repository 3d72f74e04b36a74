"""Kafka adapter of the scheduler: how many image.requested records the compressors have not done.

The backlog is the compressor group's lag on image.requested (latest offset minus committed
offset, over every partition): records waiting, being worked on, and finished within the last
commit interval. It is the work ahead of a newly admitted image, which is what the window bounds;
images finished by a compressor but not yet recorded by the tracker are not in it, so a slow
tracker does not shrink what the compressors get.

The topic's partition list is cached: asking the broker for metadata on every probe (five times a
second while images wait) cost a Metadata request per round. It is refreshed every
PARTITIONS_REFRESH_PROBES probes and after any failed probe; partitions added to the topic in
between are missed for at most that many rounds (their lag is then undercounted, the window's
bound max_window still holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from pipeline_schemas import IMAGE_REQUESTED

log = structlog.get_logger(__name__)
REQUEST_TIMEOUT = 2.0
PARTITIONS_REFRESH_PROBES = 150  # 30 s of rounds at the default 0.2 s pace


class BacklogProbe(Protocol):
    async def backlog(self) -> int | None: ...
    def partitions(self) -> Sequence[int]: ...


class KafkaCompressorBacklog:
    """Reads the lag through a consumer that never joins the group (no subscribe): committed
    offsets and watermarks are plain requests with their own timeouts.

    Not the AdminClient's list_offsets / list_consumer_group_offsets: with the broker down, those
    crashed the whole ingest process on a librdkafka assertion (rd_kafka_enq_once_del_source_return,
    seen in tests/e2e/test_kafka_outage.py).
    """

    def __init__(self, bootstrap_servers: str, group_id: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False}
        )
        self._partitions: list[int] = []
        self._probes_left = 0  # probes until the partition list is read again

    async def backlog(self) -> int | None:
        """The group's lag on image.requested, or None when Kafka does not answer in time."""
        try:
            return await asyncio.to_thread(self._lag)
        except Exception as exc:  # noqa: BLE001 - no figure: the scheduler falls back to its window
            self._probes_left = 0  # the topic may have changed: read its partitions again
            log.warning("scheduler.backlog_unknown", error=repr(exc))
            return None

    def partitions(self) -> Sequence[int]:
        """image.requested's partitions as last read (empty before the first probe): the
        scheduler places events only in partitions the broker named."""
        return tuple(self._partitions)

    def close(self) -> None:
        """Never joined the group, so there is nothing to leave; frees its connections."""
        self._consumer.close()

    def _partition_ids(self, topic: str) -> list[int]:
        if self._probes_left <= 0 or not self._partitions:  # an empty list is never kept
            metadata = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT).topics[topic]
            self._partitions = sorted(metadata.partitions)
            self._probes_left = PARTITIONS_REFRESH_PROBES
        self._probes_left -= 1
        return self._partitions

    def _lag(self) -> int:
        topic = IMAGE_REQUESTED.name
        partitions = self._partition_ids(topic)
        committed = self._consumer.committed(
            [TopicPartition(topic, p) for p in partitions], timeout=REQUEST_TIMEOUT
        )
        # Every partition's end in one ListOffsets request (timestamp OFFSET_END: the latest
        # offset), not one request per partition as get_watermark_offsets makes: the scheduler
        # asks five times a second while images wait.
        ends = self._consumer.offsets_for_times(
            [TopicPartition(topic, p, OFFSET_END) for p in partitions], timeout=REQUEST_TIMEOUT
        )
        end_of = {tp.partition: tp.offset for tp in ends}
        lag = 0
        for tp in committed:
            # No commit yet (negative offset): the group reads from the beginning of what is kept.
            start = tp.offset if tp.offset >= 0 else 0
            lag += max(0, end_of[tp.partition] - start)
        return lag
