"""Every notifier write route, called by another tenant, changes nothing in PostgreSQL (issue 12, defect 2).

Tenant A owns a subscription with a pending delivery, a dead delivery and its attempt log;
tenant B calls each write route on A's ids. The rows are compared before and after. Each test
also has A make the same call, so the routes demonstrably do change rows for their owner.
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration.notifier.support import (
    new_delivery,
    new_key,
    new_request,
    running_notifier,
    settings_for,
    snapshot,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(pool, fresh_database_url):
    settings = settings_for(fresh_database_url)
    async with running_notifier(pool, settings) as client:
        a, b = await new_key(pool, "tenant-a"), await new_key(pool, "tenant-b")
        created = await client.post("/subscriptions", json={"url": "http://127.0.0.1:9/a"}, headers=a)
        assert created.status_code == 201
        subscription = uuid.UUID(created.json()["subscription_id"])
        request_id = await new_request(pool, "tenant-a")
        pending = await new_delivery(pool, "tenant-a", request_id, subscription_id=subscription, due_in=3600)
        dead = await new_delivery(pool, "tenant-a", request_id, subscription_id=subscription, status="dead")
        await pool.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms) VALUES ($1, 1, 500, 3)",
            dead,
        )
        yield {
            "client": client,
            "a": a,
            "b": b,
            "subscription": subscription,
            "request_id": request_id,
            "pending": pending,
            "dead": dead,
        }


async def test_deleting_another_tenants_subscription_is_404_and_changes_nothing(pool, world):
    before = await snapshot(pool)
    answer = await world["client"].delete(f"/subscriptions/{world['subscription']}", headers=world["b"])
    assert answer.status_code == 404
    assert await snapshot(pool) == before

    # The owner's call does what B's must not: the subscription goes and its pending delivery dies.
    owned = await world["client"].delete(f"/subscriptions/{world['subscription']}", headers=world["a"])
    assert owned.status_code == 204
    status = await pool.fetchval(
        "SELECT status FROM webhook_deliveries WHERE delivery_id = $1", world["pending"]
    )
    assert status == "dead"


async def test_deleting_ones_own_subscription_leaves_other_tenants_deliveries_alone(pool, world):
    """Even a delivery of B that names A's subscription id (it cannot today) is not B's to kill, nor A's."""
    b_request = await new_request(pool, "tenant-b")
    b_delivery = await new_delivery(
        pool, "tenant-b", b_request, subscription_id=world["subscription"], due_in=3600
    )
    before = await snapshot(pool, "tenant-b")
    answer = await world["client"].delete(f"/subscriptions/{world['subscription']}", headers=world["a"])
    assert answer.status_code == 204
    assert await snapshot(pool, "tenant-b") == before
    assert (
        await pool.fetchval("SELECT status FROM webhook_deliveries WHERE delivery_id = $1", b_delivery)
        == "pending"
    )


async def test_replaying_another_tenants_dead_letter_is_404_and_changes_nothing(pool, world):
    before = await snapshot(pool)
    answer = await world["client"].post(f"/deliveries/{world['dead']}/replay", headers=world["b"])
    assert answer.status_code == 404
    assert await snapshot(pool) == before

    owned = await world["client"].post(f"/deliveries/{world['dead']}/replay", headers=world["a"])
    assert owned.status_code == 202
    status = await pool.fetchval(
        "SELECT status FROM webhook_deliveries WHERE delivery_id = $1", world["dead"]
    )
    assert status == "pending"


async def test_creating_a_subscription_touches_only_the_callers_tenant(pool, world):
    before = await snapshot(pool, "tenant-a")
    answer = await world["client"].post(
        "/subscriptions", json={"url": "http://127.0.0.1:9/b"}, headers=world["b"]
    )
    assert answer.status_code == 201
    assert await snapshot(pool, "tenant-a") == before
    rows = await pool.fetch("SELECT tenant_id, url FROM webhook_subscriptions WHERE tenant_id = 'tenant-b'")
    assert [(r["tenant_id"], r["url"]) for r in rows] == [("tenant-b", "http://127.0.0.1:9/b")]


async def test_another_tenants_request_log_and_dead_letters_are_not_shown(world):
    log = await world["client"].get(f"/requests/{world['request_id']}/deliveries", headers=world["b"])
    assert log.status_code == 404
    letters = await world["client"].get("/dead-letters", headers=world["b"])
    assert str(world["dead"]) not in {row["delivery_id"] for row in letters.json()}
    subscriptions = await world["client"].get("/subscriptions", headers=world["b"])
    assert str(world["subscription"]) not in {row["subscription_id"] for row in subscriptions.json()}
    own = await world["client"].get(f"/requests/{world['request_id']}/deliveries", headers=world["a"])
    assert {row["delivery_id"] for row in own.json()} == {str(world["pending"]), str(world["dead"])}


async def test_subscriptions_per_tenant_are_capped(pool, fresh_database_url):
    async with running_notifier(
        pool, settings_for(fresh_database_url, max_subscriptions_per_tenant=2)
    ) as client:
        c = await new_key(pool, "tenant-c")
        answers = [
            (
                await client.post("/subscriptions", json={"url": f"http://127.0.0.1:9/{n}"}, headers=c)
            ).status_code
            for n in range(3)
        ]
        count = await pool.fetchval("SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = 'tenant-c'")
    assert answers == [201, 201, 409]
    assert count == 2
