"""Webhook delivery on the real stack: retries under one webhook-id, dead letters, replay, subscriptions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.servers import LocalServer, answers, never_answers, serving, wait_until
from tests.support.webhooks import verify_standard_webhook

pytestmark = pytest.mark.e2e


@pytest.fixture
async def image_host():
    async with serving({"one.jpg": photo_jpeg(320, 240, seed=7)}) as server:
        yield server


async def finished_request(ingest_url: str, image_host: LocalServer, **form: str) -> dict:
    csv = csv_of([(1, "Mug", [image_host.url("one.jpg")])])
    accepted = await upload_csv(ingest_url, csv, headers=AUTH, **form)
    await wait_for_completion(accepted["status_url"], timeout=60, headers=AUTH)
    return accepted


@pytest.fixture(autouse=True)
def _notifier_key(api_key):
    AUTH.update({"Authorization": f"Bearer {api_key}"})


AUTH: dict[str, str] = {}


async def deliveries(notifier_url: str, request_id: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        return (await client.get(f"{notifier_url}/requests/{request_id}/deliveries")).json()


def reaches(notifier_url: str, request_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    """A predicate for `wait_until`: an attempt of the request's delivery ended as `status`."""

    async def check() -> bool:
        return any(a["delivery_status"] == status for a in await deliveries(notifier_url, request_id))

    return check


async def test_a_subscriber_failing_three_times_gets_the_fourth_attempt_with_the_same_webhook_id(
    ingest_url, notifier_url, image_host, subscriber, webhook_secret
):
    subscriber.routes["hook"] = answers([503, 503, 503])
    accepted = await finished_request(ingest_url, image_host, webhook_url=subscriber.url("hook"))

    assert await wait_until(reaches(notifier_url, accepted["request_id"], "delivered"), timeout=30)
    hits = subscriber.hits("hook")
    assert len(hits) == 4
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    # The default tenant's first secret is the stack's NOTIFIER_SIGNING_SECRET (migration path).
    assert verify_standard_webhook(webhook_secret, hits[-1].headers, hits[-1].body)
    log = await deliveries(notifier_url, accepted["request_id"])
    assert [a["status_code"] for a in log] == [503, 503, 503, 200]
    assert all(a["latency_ms"] is not None and a["attempted_at"] for a in log)


async def test_a_tenant_verifies_its_webhooks_with_the_secret_it_rotated_and_no_other_secret_does(
    ingest_url, notifier_url, image_host, subscriber, webhook_secret
):
    """Per-upload webhooks of a tenant are signed with its own secret, learnt from POST /signing-secret."""
    tenant = f"hooks-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30) as client:
        made = await client.post(
            f"{ingest_url}/keys",
            json={"tenant_id": tenant, "scopes": ["upload", "read", "webhooks"]},
            headers=AUTH,
        )
        assert made.status_code == 201, made.text
        own = {"Authorization": f"Bearer {made.json()['key']}"}
        rotated = await client.post(f"{notifier_url}/signing-secret", headers=own)
    assert rotated.status_code == 201, rotated.text
    secret = rotated.json()["secret"]
    subscriber.routes["own"] = answers()
    csv = csv_of([(1, "Mug", [image_host.url("one.jpg")])])
    accepted = await upload_csv(ingest_url, csv, headers=own, webhook_url=subscriber.url("own"))

    async def received() -> bool:
        return bool(subscriber.hits("own"))

    assert await wait_until(received, timeout=60)
    hit = subscriber.hits("own")[0]
    assert json.loads(hit.body)["request_id"] == accepted["request_id"]
    assert verify_standard_webhook(secret, hit.headers, hit.body)
    assert not verify_standard_webhook(webhook_secret, hit.headers, hit.body)  # the stack's global one


async def test_a_subscriber_that_never_answers_is_dead_lettered_and_can_be_replayed(
    ingest_url, notifier_url, image_host, subscriber
):
    subscriber.routes["hook"] = never_answers
    accepted = await finished_request(ingest_url, image_host, webhook_url=subscriber.url("hook"))
    dead: list[dict] = []

    async def dead_lettered() -> bool:
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            letters = (await client.get(f"{notifier_url}/dead-letters")).json()
        dead[:] = [d for d in letters if d["request_id"] == accepted["request_id"]]
        return bool(dead)

    assert await wait_until(dead_lettered, timeout=60)
    assert dead[0]["attempts"] == 5  # the test stack's schedule allows 4 retries
    assert dead[0]["last_error"] == "timeout"

    subscriber.routes["hook"] = answers()
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        resp = await client.post(f"{notifier_url}/deliveries/{dead[0]['delivery_id']}/replay")
    assert resp.status_code == 202

    assert await wait_until(reaches(notifier_url, accepted["request_id"], "delivered"), timeout=30)
    assert len({h.headers["webhook-id"] for h in subscriber.hits("hook")}) == 1


async def test_a_subscriber_answering_410_gone_is_dead_lettered_after_one_attempt(
    ingest_url, notifier_url, image_host, subscriber
):
    subscriber.routes["hook"] = answers(then=410)
    accepted = await finished_request(ingest_url, image_host, webhook_url=subscriber.url("hook"))

    assert await wait_until(reaches(notifier_url, accepted["request_id"], "dead"), timeout=30)
    await asyncio.sleep(1)  # a wrong retry would show up within this window
    assert [a["status_code"] for a in await deliveries(notifier_url, accepted["request_id"])] == [410]


async def test_a_global_subscription_receives_completions_signed_with_its_own_secret(
    ingest_url, notifier_url, image_host, subscriber
):
    subscriber.routes["global"] = answers()
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        created = await client.post(f"{notifier_url}/subscriptions", json={"url": subscriber.url("global")})
        assert created.status_code == 201
        subscription = created.json()
        listed = (await client.get(f"{notifier_url}/subscriptions")).json()
    assert subscription["secret"].startswith("whsec_")
    assert all("secret" not in s for s in listed)
    try:
        accepted = await finished_request(ingest_url, image_host)

        async def received() -> bool:
            return any(
                json.loads(h.body)["request_id"] == accepted["request_id"] for h in subscriber.hits("global")
            )

        assert await wait_until(received, timeout=30)
        hit = next(
            h for h in subscriber.hits("global") if json.loads(h.body)["request_id"] == accepted["request_id"]
        )
        assert verify_standard_webhook(subscription["secret"], hit.headers, hit.body)
        body = json.loads(hit.body)
        assert body["type"] == "request.completed"
        assert {
            "status",
            "total_images",
            "processed_images",
            "failed_images",
            "completed_at",
            "output_csv_url",
        } <= set(body)
        # Issue 16: which formats the images were stored in (this upload asked for the default).
        assert body["output_formats"] == {"jpeg": body["processed_images"]}
    finally:
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            deleted = await client.delete(f"{notifier_url}/subscriptions/{subscription['subscription_id']}")
            again = await client.delete(f"{notifier_url}/subscriptions/{subscription['subscription_id']}")
    assert deleted.status_code == 204
    assert again.status_code == 404


async def test_a_subscription_url_must_be_an_absolute_http_url(notifier_url):
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        resp = await client.post(f"{notifier_url}/subscriptions", json={"url": "ftp://example.test/x"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_a_pending_retry_survives_a_notifier_crash(
    ingest_url, notifier_url, pipeline, image_host, subscriber
):
    from devstack import procs, services

    calls = {"n": 0}
    crashed = asyncio.Event()

    async def fails_until_the_notifier_restarted(_: web.Request) -> web.Response:
        calls["n"] += 1
        return web.Response(status=200 if crashed.is_set() else 503)

    subscriber.routes["hook"] = fails_until_the_notifier_restarted
    accepted = await finished_request(ingest_url, image_host, webhook_url=subscriber.url("hook"))

    async def first_attempt_failed() -> bool:
        return len(subscriber.hits("hook")) >= 1

    assert await wait_until(first_attempt_failed, timeout=30)
    await asyncio.to_thread(procs.kill_hard, pipeline.run_dir, "notifier")
    crashed.set()
    await asyncio.to_thread(services.start_one, pipeline, "notifier")
    await asyncio.to_thread(services.wait_healthy, pipeline)

    assert await wait_until(reaches(notifier_url, accepted["request_id"], "delivered"), timeout=60)
    assert len({h.headers["webhook-id"] for h in subscriber.hits("hook")}) == 1


async def test_a_replayed_delivery_keeps_numbering_its_attempts(
    ingest_url, notifier_url, image_host, subscriber
):
    subscriber.routes["hook"] = answers(then=410)
    accepted = await finished_request(ingest_url, image_host, webhook_url=subscriber.url("hook"))

    hook = subscriber.url("hook")

    async def hook_log() -> list[dict]:
        return [a for a in await deliveries(notifier_url, accepted["request_id"]) if a["target_url"] == hook]

    async def dead() -> bool:
        log = await hook_log()
        return bool(log) and log[-1]["delivery_status"] == "dead"

    assert await wait_until(dead, timeout=30)
    subscriber.routes["hook"] = answers()
    delivery_id = (await hook_log())[0]["delivery_id"]
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        assert (await client.post(f"{notifier_url}/deliveries/{delivery_id}/replay")).status_code == 202

    async def delivered() -> bool:
        log = await hook_log()
        return log[-1]["delivery_status"] == "delivered" and log[-1]["status_code"] == 200

    assert await wait_until(delivered, timeout=30)
    assert [(a["attempt"], a["status_code"]) for a in await hook_log()] == [(1, 410), (2, 200)]
