"""A round's image.requested events go to the partitions the scheduler chose, on the real servers:
the outbox row carries the partition, the relay publishes there, the key stays the image id."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import asyncpg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from ingest.admission_store import AsyncpgAdmissionStore
from ingest.csv_validation import parse_upload
from ingest.repository import AsyncpgUploadRepository
from ingest.scheduling import Admission
from ingest.uploads import UploadOptions, plan_upload
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.outbox import OutboxRelay
from pipeline_schemas import IMAGE_REQUESTED

from tests.integration.ingest.support import NOBODY, csv_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(bootstrap_servers):
    """A topic shaped like image.requested (its 12 partitions) that no compressor reads."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    name = f"test.admission-partitions.{uuid.uuid4().hex[:8]}"
    new = NewTopic(name, num_partitions=IMAGE_REQUESTED.partitions, replication_factor=1)
    admin.create_topics([new])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def read_partitions(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0
) -> list[tuple[int, bytes]]:
    """(partition, key) of the first `expected` records of every partition of `topic` (bounded in time)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        found: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            found += [(m.partition(), m.key()) for m in consumer.consume(100, timeout=0.5) if not m.error()]
        return found
    finally:
        consumer.close()


async def test_admitted_events_are_published_to_the_rounds_partitions_keyed_by_image_id(
    fresh_database_url, bootstrap_servers, topic
):
    rows = [f"{n},P{n},{NOBODY}/placed/{n}.jpg" for n in range(1, 11)]
    data = csv_bytes(*rows)
    plan = plan_upload(parse_upload(data), data, UploadOptions(quality=70))
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=3)
    store = AsyncpgAdmissionStore(fresh_database_url)
    producer = AsyncProducer(bootstrap_servers)
    try:
        await AsyncpgUploadRepository(pool).record(plan)
        assert await store.lead()
        assert await store.admit([Admission(plan.request_id, 10)], [4, 9]) == 10
        stored = await pool.fetch(
            "UPDATE outbox SET topic = $1 WHERE topic = $2 AND value LIKE $3 RETURNING key, kafka_partition",
            topic,
            IMAGE_REQUESTED.name,
            f'%"request_id":"{plan.request_id}"%'.encode(),
        )
        assert Counter(r["kafka_partition"] for r in stored) == {4: 5, 9: 5}

        relay = OutboxRelay(pool, producer, [topic], service="test", listen=False)
        assert await relay.publish_batch() == 10
    finally:
        await store.resign()
        await asyncio.to_thread(producer.close)
        await pool.close()

    published = await asyncio.to_thread(read_partitions, bootstrap_servers, topic, 10)
    image_ids = {str(i).encode() for i in await image_ids_of(fresh_database_url, plan.request_id)}
    assert sorted(published) == sorted((r["kafka_partition"], r["key"]) for r in stored)
    assert {key for _, key in published} == image_ids
    assert len(published) == 10


async def test_without_partitions_the_events_are_left_to_the_key(fresh_database_url):
    data = csv_bytes(f"1,A,{NOBODY}/hashed/1.jpg", f"2,B,{NOBODY}/hashed/2.jpg")
    plan = plan_upload(parse_upload(data), data, UploadOptions(quality=70))
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    store = AsyncpgAdmissionStore(fresh_database_url)
    try:
        await AsyncpgUploadRepository(pool).record(plan)
        assert await store.lead()
        assert await store.admit([Admission(plan.request_id, 2)]) == 2
        stored = await pool.fetch(
            "DELETE FROM outbox WHERE topic = $1 AND value LIKE $2 RETURNING kafka_partition",
            IMAGE_REQUESTED.name,
            f'%"request_id":"{plan.request_id}"%'.encode(),
        )
    finally:
        await store.resign()
        await pool.close()

    assert [r["kafka_partition"] for r in stored] == [None, None]


async def image_ids_of(dsn: str, request_id: uuid.UUID) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r["image_id"]
            for r in await conn.fetch("SELECT image_id FROM images WHERE request_id = $1", request_id)
        ]
    finally:
        await conn.close()
