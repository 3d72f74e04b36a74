"""Durable acceptance: an upload made while Kafka is down is accepted, and completes once it is back.

In a module of its own: the broker restart would disturb any other test in flight. The broker is
started again in `finally`, whatever happens, so later tests find it running.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.images import photo_jpeg
from tests.support.servers import serving, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def image_host():
    async with serving({f"{n}.jpg": photo_jpeg(320, 240, seed=40 + n) for n in range(4)}) as server:
        yield server


async def upload(http: httpx.AsyncClient, ingest_url: str, text: str) -> dict:
    resp = await http.post(f"{ingest_url}/upload", files={"file": ("p.csv", text.encode(), "text/csv")})
    assert resp.status_code == 202, resp.text
    return resp.json()


async def wait_finished(http: httpx.AsyncClient, status_url: str, *, timeout: float) -> dict:
    latest: dict = {}

    async def finished() -> bool:
        latest.update((await http.get(status_url)).json())
        return latest.get("completed_at") is not None

    assert await wait_until(finished, timeout=timeout, interval=0.5), f"not finished in {timeout}s: {latest}"
    return latest


@pytest.fixture
def broker(pipeline):
    """devstack's Kafka controls for the test stack; the broker is running again afterwards."""
    from devstack import kafka

    if pipeline.external_kafka:
        pytest.skip("Kafka is external (KAFKA_BOOTSTRAP_SERVERS): this test cannot stop it")
    try:
        yield kafka
    finally:
        kafka.start(pipeline)


async def test_an_upload_while_kafka_is_down_is_accepted_and_completes_when_kafka_is_back(
    pipeline, broker, ingest_url, image_host, auth_headers
):
    text = "S. No.,Product Name,Input Image Urls\n"
    text += f"1,Chair,{image_host.url('0.jpg')},{image_host.url('1.jpg')}\n"
    text += f'2,Table,"{image_host.url("2.jpg")},{image_host.url("3.jpg")}"\n'
    async with httpx.AsyncClient(timeout=30, headers=auth_headers) as http:
        # Every consumer must have joined its group before the outage: a worker still starting
        # up when the broker goes away is a different fault from the one this test is about.
        warm_up = await upload(
            http, ingest_url, f"S. No.,Product Name,Input Image Urls\n1,Warm-up,{image_host.url('0.jpg')}\n"
        )
        assert (await wait_finished(http, warm_up["status_url"], timeout=120))["status"] == "completed"

        await asyncio.to_thread(broker.stop, pipeline)
        try:
            ready_while_down = await http.get(f"{ingest_url}/readyz")
            resp = await http.post(
                f"{ingest_url}/upload", files={"file": ("p.csv", text.encode(), "text/csv")}
            )
            status_while_down = await http.get(resp.json()["status_url"]) if resp.status_code == 202 else None
        finally:
            await asyncio.to_thread(broker.start, pipeline)

        assert resp.status_code == 202, resp.text
        assert ready_while_down.status_code == 503
        assert "kafka" in ready_while_down.json()["detail"]
        assert status_while_down.status_code == 200
        assert status_while_down.json()["completed_at"] is None

        latest = await wait_finished(http, resp.json()["status_url"], timeout=180)
        ready_after = await http.get(f"{ingest_url}/readyz")

    assert latest["status"] == "completed"
    assert (latest["processed_images"], latest["failed_images"]) == (4, 0)
    assert ready_after.status_code == 200
