"""The walking skeleton, end to end on the real broker and database with every service running."""

from __future__ import annotations

import asyncio
import io
import json
import uuid

import asyncpg
import httpx
import pytest
from PIL import Image

from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.jpeg_quality import estimate_jpeg_quality
from tests.support.servers import LocalServer, answers, serving, wait_until
from tests.support.webhooks import verify_standard_webhook

pytestmark = pytest.mark.e2e

SIZES = [(640, 480), (800, 800), (1024, 768), (480, 640), (1200, 900)]


@pytest.fixture
async def image_host():
    pictures = {f"img/{n}.jpg": photo_jpeg(*SIZES[n % len(SIZES)], quality=92, seed=n) for n in range(24)}
    async with serving(pictures) as server:
        yield server


def product_csv(host: LocalServer, count: int) -> bytes:
    return csv_of(
        [
            (serial, f"Product {serial}", [host.url(f"img/{(serial - 1) * 3 + k}.jpg") for k in range(3)])
            for serial in range(1, count // 3 + 1)
        ]
    )


async def test_uploaded_csv_is_compressed_tracked_and_notified_end_to_end(
    ingest_url, image_host, subscriber, database_url, webhook_secret, auth_headers
):
    subscriber.routes["hook"] = answers()
    accepted = await upload_csv(
        ingest_url, product_csv(image_host, 24), headers=auth_headers, webhook_url=subscriber.url("hook")
    )
    assert accepted["status"] == "pending"
    assert accepted["total_images"] == 24

    status = await wait_for_completion(accepted["status_url"], headers=auth_headers)
    assert status["status"] == "completed"
    assert (status["processed_images"], status["failed_images"], status["progress"]) == (24, 0, 1.0)

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT input_url, output_url, status, width, height FROM images WHERE request_id = $1",
            uuid.UUID(accepted["request_id"]),
        )
    finally:
        await conn.close()
    assert len(rows) == 24
    assert all(r["status"] == "done" and r["output_url"] for r in rows)

    async with httpx.AsyncClient(timeout=30) as client:
        for row in rows:
            source = Image.open(io.BytesIO(image_host.files[row["input_url"].split("/", 3)[3]]))
            output = (await client.get(row["output_url"])).content
            image = Image.open(io.BytesIO(output))
            image.load()
            assert image.format == "JPEG"
            assert image.size == source.size == (row["width"], row["height"])
            assert estimate_jpeg_quality(output) == 50

    async def webhook_arrived() -> bool:
        return len(subscriber.hits("hook")) >= 1

    assert await wait_until(webhook_arrived, timeout=30)
    await asyncio.sleep(2)  # a duplicate delivery would arrive within this window
    hooks = subscriber.hits("hook")
    assert len(hooks) == 1
    body = json.loads(hooks[0].body)
    assert body["type"] == "request.completed"
    assert body["request_id"] == accepted["request_id"]
    assert body["status"] == "completed"
    assert verify_standard_webhook(webhook_secret, hooks[0].headers, hooks[0].body)


async def test_status_of_an_unknown_request_is_404_problem(tracker_url, auth_headers):
    async with httpx.AsyncClient(headers=auth_headers) as client:
        resp = await client.get(f"{tracker_url}/status/00000000-0000-4000-8000-000000000000")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_workers_and_services_expose_prometheus_metrics_after_a_run(
    pipeline, notifier_url, tracker_url
):
    async with httpx.AsyncClient(timeout=10) as client:
        tracker_worker = (
            await client.get(f"http://127.0.0.1:{pipeline.metrics_port_base + 11}/metrics")
        ).text
        compressors = [
            (await client.get(f"http://127.0.0.1:{pipeline.metrics_port_base + n}/metrics")).text
            for n in (1, 2)
        ]
        await client.get(f"{notifier_url}/healthz")  # one request the notifier must count
        notifier = (await client.get(f"{notifier_url}/metrics")).text
        ingest = (await client.get(f"http://127.0.0.1:{pipeline.ingest_port}/metrics")).text
        tracker_api = (await client.get(f"{tracker_url}/metrics")).text
    assert "imgpipe_results_recorded_total" in tracker_worker
    assert "imgpipe_outbox_backlog_rows" in tracker_worker
    for stage in ("download", "compress", "store", "end_to_end"):
        assert any(f'stage="{stage}"' in text for text in compressors), stage
    assert any('imgpipe_images_processed_total{service="compressor"}' in text for text in compressors)
    assert any("imgpipe_consumer_lag_messages{" in text for text in compressors)
    assert 'service="notifier"' in notifier
    assert "http_requests_total{" in notifier
    assert 'imgpipe_outbox_backlog_rows{service="ingest"}' in ingest
    assert 'route="/upload"' in ingest
    assert 'service="tracker-api"' in tracker_api
