"""Faults mid-flight on the real stack; after each, nothing is lost and nothing is counted twice.

Each case uploads a 200-image request, injects its fault while the request is in flight (kill -9
of a service then its restart, a broker or database restart, or a misbehaving subscriber), waits
for the request to finish, and checks PostgreSQL, the Kafka topics and the webhook receiver.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest

from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.kafka_topics import read_topic
from tests.support.servers import LocalServer, answers, delayed, never_answers, serving, wait_until

pytestmark = pytest.mark.chaos

IMAGES = 200


@pytest.fixture(scope="module")
async def image_host():
    pictures = {f"c/{n}.jpg": photo_jpeg(160 + n % 7 * 16, 120 + n % 5 * 16, seed=n) for n in range(IMAGES)}
    async with serving(pictures) as server:
        slow_image = delayed(server, 0.02)  # keeps a request in flight long enough to hit it
        server.routes.update(dict.fromkeys(pictures, slow_image))
        yield server


def request_csv(host: LocalServer) -> bytes:
    return csv_of(
        [
            (n + 1, f"Item {n + 1}", [host.url(f"c/{n * 2}.jpg"), host.url(f"c/{n * 2 + 1}.jpg")])
            for n in range(IMAGES // 2)
        ]
    )


async def processed_count(status_url: str, headers: dict[str, str]) -> int:
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        resp = await client.get(status_url)
    body = resp.json() if resp.status_code == 200 else {}
    return body.get("processed_images", 0) + body.get("failed_images", 0)


def restart_service(profile, name: str) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        from devstack import procs, services

        await asyncio.to_thread(procs.kill_hard, profile.run_dir, name)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(services.start_one, profile, name)

    return fault


def restart_kafka(profile) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        from devstack import kafka

        await asyncio.to_thread(kafka.stop, profile)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(kafka.start, profile)

    return fault


def restart_postgres(profile) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        from devstack import postgres

        await asyncio.to_thread(postgres.stop, profile, "immediate")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(postgres.start, profile)

    return fault


FAULTS = [
    ("kill -9 ingest after 202", "ingest", "after_accept"),
    ("kill -9 one compressor", "compressor-1", "mid_flight"),
    ("kill -9 a tracker worker", "tracker-worker-1", "mid_flight"),
    ("kill -9 notifier", "notifier", "mid_flight"),
    ("restart Kafka broker", "kafka", "mid_flight"),
    ("restart PostgreSQL", "postgres", "mid_flight"),
]


@pytest.mark.parametrize(("fault_name", "target", "when"), FAULTS, ids=[f[1] for f in FAULTS])
async def test_a_fault_mid_flight_loses_nothing_and_counts_nothing_twice(
    fault_name,
    target,
    when,
    pipeline,
    ingest_url,
    image_host,
    subscriber,
    database_url,
    bootstrap_servers,
    chaos_report,
):
    if target in ("kafka", "postgres") and (pipeline.external_kafka or pipeline.external_database):
        pytest.skip("servers named by the environment are not ours to restart")
    fault = {"kafka": restart_kafka, "postgres": restart_postgres}.get(
        target, lambda p: restart_service(p, target)
    )(pipeline)
    subscriber.routes["hook"] = answers([])
    key = bearer(pipeline.api_key())
    accepted = await upload_csv(
        ingest_url, request_csv(image_host), headers=key, webhook_url=subscriber.url("hook")
    )
    if when == "mid_flight":

        async def started() -> bool:
            return await processed_count(accepted["status_url"], key) >= 20

        assert await wait_until(started, timeout=60)
    await fault()
    row = await verify_request(accepted, subscriber, database_url, bootstrap_servers, fault_name, headers=key)
    chaos_report.append(row)
    assert row["outcome"] == "ok", row


SUBSCRIBERS = [
    ("subscriber fails 3x then succeeds", [503, 503, 503], "delivered", 4),
    ("subscriber never answers", None, "dead", 5),
    ("subscriber answers 410 Gone", [410], "dead", 1),
]


@pytest.mark.parametrize(
    ("fault_name", "statuses", "final", "attempts"), SUBSCRIBERS, ids=["flaky", "silent", "gone"]
)
async def test_a_misbehaving_subscriber_is_retried_or_dead_lettered_under_one_webhook_id(
    fault_name,
    statuses,
    final,
    attempts,
    pipeline,
    ingest_url,
    notifier_url,
    image_host,
    subscriber,
    database_url,
    bootstrap_servers,
    chaos_report,
):
    subscriber.routes["hook"] = never_answers if statuses is None else answers(statuses)
    key = bearer(pipeline.api_key())
    accepted = await upload_csv(
        ingest_url, request_csv(image_host), headers=key, webhook_url=subscriber.url("hook")
    )
    row = await verify_request(
        accepted,
        subscriber,
        database_url,
        bootstrap_servers,
        fault_name,
        headers=key,
        delivery_final=final,
        expected_attempts=attempts,
        notifier_url=notifier_url,
    )
    chaos_report.append(row)
    assert row["outcome"] == "ok", row


async def verify_request(
    accepted: dict,
    subscriber: LocalServer,
    database_url: str,
    bootstrap: str,
    fault_name: str,
    *,
    headers: dict[str, str],
    delivery_final: str = "delivered",
    expected_attempts: int | None = None,
    notifier_url: str | None = None,
) -> dict:
    status = await wait_for_completion(accepted["status_url"], timeout=240, headers=headers)
    request_id = uuid.UUID(accepted["request_id"])
    conn = await asyncpg.connect(database_url)
    try:
        done = await conn.fetchval(
            "SELECT count(*) FROM images WHERE request_id = $1 AND status = 'done'", request_id
        )
        req = await conn.fetchrow("SELECT * FROM requests WHERE request_id = $1", request_id)

        async def delivery_settled() -> bool:
            state = await conn.fetchval(
                "SELECT string_agg(status, ',') FROM webhook_deliveries WHERE request_id = $1", request_id
            )
            return state == delivery_final

        settled = await wait_until(delivery_settled, timeout=90)
        delivery = await conn.fetchrow(
            "SELECT status, attempts FROM webhook_deliveries WHERE request_id = $1", request_id
        )
    finally:
        await conn.close()
    results = [
        json.loads(v)
        for k, v in await asyncio.to_thread(read_topic, bootstrap, "image.results")
        if k == str(request_id).encode()
    ]
    completions = [
        json.loads(v)
        for k, v in await asyncio.to_thread(read_topic, bootstrap, "request.completed")
        if k == str(request_id).encode()
    ]
    per_image = Counter(r["image_id"] for r in results)
    hits = subscriber.hits("hook")
    webhook_ids = {h.headers.get("webhook-id") for h in hits}
    checks = {
        "status completed": status["status"] == "completed",
        "every image done once": done == IMAGES == req["processed_images"] and req["failed_images"] == 0,
        "every image has a result": len(per_image) == IMAGES,
        "one completion event id": len({c["event_id"] for c in completions}) == 1,
        "one webhook id": len(webhook_ids) == 1,
        "delivery settled": settled and delivery is not None and delivery["status"] == delivery_final,
        "attempts as expected": expected_attempts is None
        or (delivery and delivery["attempts"] == expected_attempts),
    }
    failed = [name for name, ok in checks.items() if not ok]
    return {
        "fault": fault_name,
        "images expected": IMAGES,
        "images done": done,
        "duplicates counted": req["processed_images"] + req["failed_images"] - done,
        "redundant events ignored": sum(per_image.values()) - len(per_image),
        "webhook ids delivered": len(webhook_ids)
        if delivery_final == "delivered"
        else f"{len(webhook_ids)} (dead-lettered)",
        "attempts": delivery["attempts"] if delivery else 0,
        "outcome": "ok" if not failed else "FAILED: " + ", ".join(failed),
    }
