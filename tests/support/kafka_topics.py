"""Reading a whole topic back, to count what was really published (bounded in time)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def read_topic(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) on `topic` up to its current end, without joining a consumer group."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        wanted = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        records: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                records.append((msg.key(), msg.value()))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    wanted.discard(msg.partition())
        assert not wanted, f"could not read {topic} to its end within {timeout}s"
        return records
    finally:
        consumer.close()
