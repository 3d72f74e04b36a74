"""The rename of `image.compressed` to `image.results` while it is under way (schemas/README.md).

The compressor writes only the new name, but a result still sitting in the deprecated topic (from a
compressor not yet upgraded) must be recorded all the same: the tracker reads both names.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiohttp import web
from confluent_kafka import Producer
from pipeline_schemas import IMAGE_COMPRESSED, IMAGE_RESULTS, ImageCompressionFailed, encode

from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.kafka_topics import read_topic
from tests.support.servers import LocalServer, wait_until

pytestmark = pytest.mark.e2e

HOLD_SECONDS = 90  # longer than the compressor's whole-download limit would let it finish first


@pytest.fixture
async def held_image():
    """An image URL whose answer waits until the test releases it (bounded), so no result races ours."""
    release = asyncio.Event()

    async def hold(_: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(release.wait(), HOLD_SECONDS)
        except TimeoutError:
            pass
        return web.Response(status=404)

    server = LocalServer()
    server.routes["held.jpg"] = hold
    await server.start()
    yield server, release
    release.set()
    await server.stop()


def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce(topic, value, key)
    assert producer.flush(30) == 0, f"not delivered to {topic} within 30 s"


async def test_a_result_on_the_deprecated_topic_is_still_recorded(
    ingest_url, held_image, database_url, bootstrap_servers, auth_headers
):
    host, release = held_image
    accepted = await upload_csv(
        ingest_url, csv_of([(1, "Held", [host.url("held.jpg")])]), headers=auth_headers
    )
    request_id = uuid.UUID(accepted["request_id"])
    conn = await asyncpg.connect(database_url)
    try:
        image_id = await conn.fetchval("SELECT image_id FROM images WHERE request_id = $1", request_id)
        tenant_id = await conn.fetchval("SELECT tenant_id FROM requests WHERE request_id = $1", request_id)
        old_style = ImageCompressionFailed(
            request_id=request_id,
            image_id=image_id,
            tenant_id=tenant_id,
            reason_code="written_to_the_old_name",
            message="a result from a compressor that still writes image.compressed",
        )
        await asyncio.to_thread(
            produce,
            bootstrap_servers,
            IMAGE_COMPRESSED.name,
            IMAGE_COMPRESSED.key(old_style),
            encode(old_style),
        )

        status = await wait_for_completion(accepted["status_url"], timeout=60, headers=auth_headers)
        row = await conn.fetchrow(
            "SELECT status, error_code, result_event_id FROM images WHERE image_id = $1", image_id
        )
    finally:
        release.set()
        await conn.close()

    assert (status["status"], status["failed_images"]) == ("failed", 1)
    assert (row["status"], row["error_code"], row["result_event_id"]) == (
        "failed",
        "written_to_the_old_name",
        old_style.event_id,
    )

    # Released, the compressor's own (late, duplicate) result goes to the new name only.
    key = str(request_id).encode()

    async def compressor_result_written() -> bool:
        records = await asyncio.to_thread(read_topic, bootstrap_servers, IMAGE_RESULTS.name)
        return any(k == key for k, _ in records)

    assert await wait_until(compressor_result_written, timeout=60)
    old_topic = await asyncio.to_thread(read_topic, bootstrap_servers, IMAGE_COMPRESSED.name)
    assert [v for k, v in old_topic if k == key] == [encode(old_style)]
