"""The outbox relay wakes on PostgreSQL NOTIFY: a row committed by another connection is
published long before the relay's idle poll could have found it (real PostgreSQL and Kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.outbox import OutboxRelay

pytestmark = pytest.mark.integration

IDLE = 30.0  # the relay's own poll: the test passes only if something else woke it


@pytest.fixture
def topic(bootstrap_servers):
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    name = f"test.outbox-wakeups.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def insert_row(dsn: str, topic: str) -> None:
    """As another process would: its own connection, its own transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO outbox (topic, key, value) VALUES ($1, 'k', 'v')", topic)
    finally:
        await conn.close()


async def started_relay(pool, producer, topics, *, listen: bool):
    relay = OutboxRelay(
        pool, producer, topics, idle_seconds=IDLE, retry_seconds=0.5, service="test", listen=listen
    )
    task = asyncio.create_task(relay.run())
    # Its first pass finds nothing and goes to sleep for IDLE seconds.
    assert await wait_until(lambda: relay._wakeups is None or relay._wakeups.listening, 10)
    await asyncio.sleep(0.3)
    return relay, task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_row_committed_elsewhere_is_published_well_before_the_idle_poll(
    pool, fresh_database_url, bootstrap_servers, topic
):
    producer = AsyncProducer(bootstrap_servers)
    relay, task = await started_relay(pool, producer, [topic], listen=True)
    try:
        started = time.monotonic()
        await insert_row(fresh_database_url, topic)
        assert await wait_until(lambda: relay.published == 1, IDLE / 3)
        assert time.monotonic() - started < IDLE / 3
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic) == 0
    finally:
        await stop(task)
        await asyncio.to_thread(producer.close)


async def test_without_listening_the_same_row_waits_for_the_idle_poll(
    pool, fresh_database_url, bootstrap_servers, topic
):
    """The control: it is the notification, not some other pass of the loop, that wakes the relay."""
    producer = AsyncProducer(bootstrap_servers)
    relay, task = await started_relay(pool, producer, [topic], listen=False)
    try:
        await insert_row(fresh_database_url, topic)
        assert not await wait_until(lambda: relay.published > 0, 3.0)
        relay.wake()  # the in-process wake-up still works
        assert await wait_until(lambda: relay.published == 1, 10)
    finally:
        await stop(task)
        await asyncio.to_thread(producer.close)


async def test_a_notification_for_another_topic_does_not_wake_the_relay(
    pool, fresh_database_url, bootstrap_servers, topic
):
    producer = AsyncProducer(bootstrap_servers)
    relay, task = await started_relay(pool, producer, [topic], listen=True)
    passes = {"n": 0}
    original = relay.publish_batch

    async def counted():
        passes["n"] += 1
        return await original()

    relay.publish_batch = counted  # type: ignore[method-assign]
    try:
        await insert_row(fresh_database_url, "some.other.topic")
        await asyncio.sleep(2.0)
        assert passes["n"] == 0
    finally:
        await stop(task)
        await asyncio.to_thread(producer.close)
        await pool.execute("DELETE FROM outbox WHERE topic = 'some.other.topic'")
