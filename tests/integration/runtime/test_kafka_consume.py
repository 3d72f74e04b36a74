"""AsyncConsumer.consume answers as soon as a message is there, not after its whole timeout
(real Kafka): the idle hop of every consumer in the pipeline costs no poll interval."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer

pytestmark = pytest.mark.integration

TIMEOUT = 20.0  # what consume() may wait: the test passes only if it answers long before


@pytest.fixture
def topic(bootstrap_servers):
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    name = f"test.consume-latency.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


async def test_a_lone_message_comes_back_at_once_and_batches_stay_bounded(bootstrap_servers, topic):
    consumer = AsyncConsumer(bootstrap_servers, f"test-{topic}", [topic])
    producer = AsyncProducer(bootstrap_servers)
    await consumer.start()
    try:
        await producer.send(topic, b"k", b"first")
        started = time.monotonic()
        got = await consumer.consume(100, timeout=TIMEOUT)  # the first call also joins the group
        while not got and time.monotonic() - started < 60:
            got = await consumer.consume(100, timeout=TIMEOUT)
        assert [m.value() for m in got] == [b"first"]

        await asyncio.sleep(0.5)  # the group has settled: now time one idle hop
        await producer.send(topic, b"k", b"second")
        sent = time.monotonic()
        got = await consumer.consume(100, timeout=TIMEOUT)
        assert [m.value() for m in got] == [b"second"]
        assert time.monotonic() - sent < TIMEOUT / 4

        await asyncio.gather(*(producer.send_nowait(topic, b"k", b"%d" % n) for n in range(150)))
        seen: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(seen) < 150 and time.monotonic() < deadline:
            batch = await consumer.consume(100, timeout=1.0)
            assert len(batch) <= 100
            seen += [m.value() for m in batch]
        assert seen == [b"%d" % n for n in range(150)]
    finally:
        await consumer.close()
        await asyncio.to_thread(producer.close)
