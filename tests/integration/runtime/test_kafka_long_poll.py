"""An idle consumer's fetch waits at the broker until data arrives, and is answered at once when it
does (real Kafka): a long `fetch.wait.max.ms` spares the broker empty fetches without delaying
messages, which is why AsyncConsumer raises librdkafka's 500 ms default (pipeline_runtime.kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer

pytestmark = pytest.mark.integration

LONG_WAIT_MS = 15_000  # the fetch under test waits this long at the broker unless data comes
HOPS = 3


@pytest.fixture
def topic(bootstrap_servers):
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    name = f"test.long-poll.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


async def test_a_message_ends_a_waiting_fetch_at_once(bootstrap_servers, topic):
    # If the broker held the fetch for its whole wait, each hop would take a random part of 15 s;
    # three hops each under a third of it would then be a 1-in-27 chance.
    consumer = AsyncConsumer(
        bootstrap_servers, f"test-{topic}", [topic], **{"fetch.wait.max.ms": LONG_WAIT_MS}
    )
    producer = AsyncProducer(bootstrap_servers)
    await consumer.start()
    try:
        await producer.send(topic, b"k", b"join")
        deadline = time.monotonic() + 60
        got: list = []
        while not got and time.monotonic() < deadline:  # the first calls join the group
            got = await consumer.consume(10, timeout=1.0)
        assert [m.value() for m in got] == [b"join"]
        for hop in range(HOPS):
            await asyncio.sleep(1.0)  # idle: the next fetch is now waiting at the broker
            await producer.send(topic, b"k", b"hop %d" % hop)
            sent = time.monotonic()
            got = []
            while not got and time.monotonic() - sent < LONG_WAIT_MS / 1000 + 5:
                got = await consumer.consume(10, timeout=1.0)
            assert [m.value() for m in got] == [b"hop %d" % hop]
            assert time.monotonic() - sent < LONG_WAIT_MS / 1000 / 3
    finally:
        await consumer.close()
        await asyncio.to_thread(producer.close)
