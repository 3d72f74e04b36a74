"""On the real stack, a round's image.requested events land in a few partitions (not one per
image hash), and every image is still compressed, and counted exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import asyncpg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pipeline_schemas import IMAGE_REQUESTED, IMAGE_RESULTS

from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.images import product_photo_jpeg
from tests.support.servers import LocalServer

pytestmark = pytest.mark.e2e

IMAGES = 8  # one round on an idle stack (the window's minimum is 16), one partition per 8 images


@pytest.fixture
async def image_host():
    server = await LocalServer(files={"p.jpg": product_photo_jpeg(640, 480, seed=5)}).start()
    yield server
    await server.stop()


def records_of(bootstrap: str, topic: str, request_id: str, timeout: float = 60.0) -> list[tuple[int, bytes]]:
    """(partition, value) of every record of `request_id` on `topic`, read to the topic's current end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        wanted = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        needle = f'"request_id":"{request_id}"'.encode()
        found: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                if needle in (msg.value() or b""):
                    found.append((msg.partition(), msg.value()))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    wanted.discard(msg.partition())
        assert not wanted, f"could not read {topic} to its end within {timeout}s"
        return found
    finally:
        consumer.close()


async def test_a_rounds_events_share_a_partition_and_each_image_is_processed_once(
    ingest_url, image_host, auth_headers, bootstrap_servers, database_url
):
    # Distinct URLs (the compressor downloads a URL once per request); the host ignores the query.
    csv = csv_of([(n, f"Placed {n}", [image_host.url(f"p.jpg?placed={n}")]) for n in range(1, IMAGES + 1)])
    accepted = await upload_csv(ingest_url, csv, headers=auth_headers)
    done = await wait_for_completion(accepted["status_url"], timeout=120, headers=auth_headers)
    rid = accepted["request_id"]

    requested = await asyncio.to_thread(records_of, bootstrap_servers, IMAGE_REQUESTED.name, rid)
    results = await asyncio.to_thread(records_of, bootstrap_servers, IMAGE_RESULTS.name, rid)

    first_tries = [(p, IMAGE_REQUESTED.decode(v)) for p, v in requested]
    first_tries = [(p, e) for p, e in first_tries if e.attempt == 1]
    assert len({e.image_id for _, e in first_tries}) == len(first_tries) == IMAGES
    # Hashing 8 image ids over 12 partitions touches about 6 of them; one round of 8 takes one.
    # Two allows the request to have been admitted over two rounds.
    assert len({p for p, _ in first_tries}) <= 2, Counter(p for p, _ in first_tries)
    outcomes = Counter(IMAGE_RESULTS.decode(v).image_id for _, v in results)
    assert set(outcomes) == {e.image_id for _, e in first_tries}  # every image has its result
    # Delivery is at least once (a rebalance, e.g. while the stack's group settles, repeats an
    # uncommitted partition's work); the effect is once: each image recorded done, counted once.
    conn = await asyncpg.connect(database_url)
    try:
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM images WHERE request_id = $1 GROUP BY status", uuid.UUID(rid)
        )
    finally:
        await conn.close()
    assert {r["status"]: r["n"] for r in statuses} == {"done": IMAGES}
    assert (done["status"], done["processed_images"], done["failed_images"]) == ("completed", IMAGES, 0)
