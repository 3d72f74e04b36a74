"""The backlog probe reads image.requested's partition list once per many probes, not per round."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from confluent_kafka import TopicPartition
from ingest import compressor_backlog
from ingest.compressor_backlog import KafkaCompressorBacklog
from pipeline_schemas import IMAGE_REQUESTED

TOPIC = IMAGE_REQUESTED.name


@dataclass
class FakeConsumer:
    """Two partitions, 10 records each, the group committed 7 and 10; `fail` scripts one error."""

    partitions: tuple[int, ...] = (0, 1)
    metadata_requests: int = 0
    fail: bool = False
    committed_at: dict[int, int] = field(default_factory=lambda: {0: 7, 1: 10})

    def list_topics(self, topic, timeout):
        self.metadata_requests += 1
        meta = SimpleNamespace(partitions={p: object() for p in self.partitions})
        return SimpleNamespace(topics={topic: meta})

    def committed(self, tps, timeout):
        if self.fail:
            self.fail = False
            raise RuntimeError("broker gone")
        return [TopicPartition(TOPIC, tp.partition, self.committed_at.get(tp.partition, -1)) for tp in tps]

    def offsets_for_times(self, tps, timeout):
        return [TopicPartition(TOPIC, tp.partition, 10) for tp in tps]

    def close(self):
        pass


def probe_with(consumer: FakeConsumer) -> KafkaCompressorBacklog:
    probe = KafkaCompressorBacklog("127.0.0.1:9", "compressor")  # connects to nothing until asked
    probe.close()
    probe._consumer = consumer  # the broker's answers, scripted
    return probe


async def test_one_metadata_request_serves_many_probes(monkeypatch):
    monkeypatch.setattr(compressor_backlog, "PARTITIONS_REFRESH_PROBES", 5)
    consumer = FakeConsumer()
    probe = probe_with(consumer)

    lags = [await probe.backlog() for _ in range(5)]
    assert lags == [3] * 5
    assert consumer.metadata_requests == 1
    consumer.partitions = (0, 1, 2)  # a partition added: seen at the next refresh
    assert await probe.backlog() == 13
    assert consumer.metadata_requests == 2


async def test_a_failed_probe_reads_the_partitions_again():
    consumer = FakeConsumer()
    probe = probe_with(consumer)
    assert await probe.backlog() == 3

    consumer.fail = True
    assert await probe.backlog() is None
    assert await probe.backlog() == 3
    assert consumer.metadata_requests == 2
