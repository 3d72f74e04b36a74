"""Claiming due deliveries and replaying dead letters on the real PostgreSQL.

Two repositories on two pools stand for two notifier replicas: they never get the same row, a
lease that runs out lets the row be claimed again, and a replayed dead letter is sent again
with its webhook-id by a dispatcher with the real sender, to a real local subscriber.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from notifier.repository import AsyncpgDeliveryRepository, AttemptResult
from notifier.subscriptions import AsyncpgSubscriptionRepository

from tests.integration.notifier.support import new_delivery, new_request, real_dispatcher
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

ROWS = 120


@pytest.fixture
async def second_pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


async def clear(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM webhook_deliveries")


async def test_two_dispatchers_never_claim_the_same_row(pool, second_pool):
    await clear(pool)
    request_id = await new_request(pool, "t-claims")
    for _ in range(ROWS):
        await new_delivery(pool, "t-claims", request_id)
    first, second = AsyncpgDeliveryRepository(pool), AsyncpgDeliveryRepository(second_pool)

    async def claim_all(repo: AsyncpgDeliveryRepository) -> list:
        got = []
        for _ in range(ROWS):  # bounded: each round claims at least one row or stops
            batch = await repo.claim_due(7, lease_seconds=600)
            if not batch:
                break
            got += [d.delivery_id for d in batch]
        return got

    a, b = await asyncio.gather(claim_all(first), claim_all(second))
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(set(a) | set(b)) == ROWS


async def test_a_leased_row_is_claimed_again_only_after_its_lease_runs_out(pool, second_pool):
    await clear(pool)
    request_id = await new_request(pool, "t-lease")
    delivery_id = await new_delivery(pool, "t-lease", request_id)
    first, second = AsyncpgDeliveryRepository(pool), AsyncpgDeliveryRepository(second_pool)
    [claimed] = await first.claim_due(10, lease_seconds=1.0)
    assert claimed.delivery_id == delivery_id
    assert await second.claim_due(10, lease_seconds=1.0) == []  # leased: nobody else sends it

    reclaimed: list = []

    async def lease_ran_out() -> bool:
        reclaimed.extend(await second.claim_due(10, lease_seconds=600))
        return bool(reclaimed)

    assert await wait_until(lease_ran_out, timeout=10, interval=0.2)
    assert [d.delivery_id for d in reclaimed] == [delivery_id]
    assert await first.claim_due(10, lease_seconds=600) == []


async def test_recorded_outcomes_decide_what_is_claimed_next(pool):
    await clear(pool)
    repo = AsyncpgDeliveryRepository(pool)
    request_id = await new_request(pool, "t-outcome")
    for _ in range(3):
        await new_delivery(pool, "t-outcome", request_id)
    delivered, retried, dead = await repo.claim_due(3, lease_seconds=0)
    await repo.record_attempt(delivered, AttemptResult(200, None, 1.0, "ok", "delivered", None))
    await repo.record_attempt(retried, AttemptResult(503, None, 1.0, None, "retry", 3600.0))
    await repo.record_attempt(dead, AttemptResult(410, None, 1.0, None, "dead", None))
    assert await repo.claim_due(10, lease_seconds=0) == []  # none due: done, dead, or an hour away
    rows = {
        r["delivery_id"]: (r["status"], r["attempts"])
        for r in await pool.fetch("SELECT delivery_id, status, attempts FROM webhook_deliveries")
    }
    assert rows == {
        delivered.delivery_id: ("delivered", 1),
        retried.delivery_id: ("pending", 1),
        dead.delivery_id: ("dead", 1),
    }


async def test_a_replayed_dead_letter_is_sent_again_with_its_webhook_id(pool, subscriber):
    subscriber.files["hook"] = b"received"
    await clear(pool)
    repo = AsyncpgDeliveryRepository(pool)
    request_id = await new_request(pool, "t-replay")
    delivery_id = await new_delivery(
        pool, "t-replay", request_id, url=subscriber.url("hook"), status="dead", attempts=8
    )
    await pool.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms) VALUES ($1, 1, 500, 2)",
        delivery_id,
    )
    event_id = await pool.fetchval(
        "SELECT event_id FROM webhook_deliveries WHERE delivery_id = $1", delivery_id
    )
    assert await repo.replay("t-replay", delivery_id)
    assert not await repo.replay("t-replay", delivery_id)  # pending now: nothing to replay

    async with real_dispatcher(pool) as dispatcher:
        assert await dispatcher.dispatch_due() == 1
        await dispatcher.drain()

    [hit] = subscriber.hits("hook")
    assert hit.headers["webhook-id"] == str(event_id)
    row = await pool.fetchrow(
        "SELECT status, attempts FROM webhook_deliveries WHERE delivery_id = $1", delivery_id
    )
    assert (row["status"], row["attempts"]) == ("delivered", 1)
    log = await pool.fetch(
        "SELECT attempt, status_code, response_excerpt FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        delivery_id,
    )
    # The log numbers attempts over the delivery's whole life: the replay is attempt 2.
    assert [(r["attempt"], r["status_code"], r["response_excerpt"]) for r in log] == [
        (1, 500, None),
        (2, 200, "received"),
    ]


async def test_a_dead_letter_of_a_deleted_subscription_is_not_replayed(pool):
    await clear(pool)
    subscriptions = AsyncpgSubscriptionRepository(pool, None)
    subscription_id = await pool.fetchval(
        "INSERT INTO webhook_subscriptions (subscription_id, tenant_id, url, secret_encrypted, deleted_at)"
        " VALUES (gen_random_uuid(), 't-gone', 'http://127.0.0.1:9/x', '\\x00', now()) RETURNING subscription_id"
    )
    request_id = await new_request(pool, "t-gone")
    delivery_id = await new_delivery(
        pool, "t-gone", request_id, subscription_id=subscription_id, status="dead"
    )
    assert not await AsyncpgDeliveryRepository(pool).replay("t-gone", delivery_id)
    assert await subscriptions.list("t-gone") == []
