"""The notifier's dispatcher wakes on PostgreSQL NOTIFY: a delivery committed by another
connection is sent long before the dispatcher's idle poll could have claimed it (real PostgreSQL;
the sender is a recording fake, as what is under test is when the dispatcher looks)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from notifier.repository import AsyncpgDeliveryRepository
from notifier.sender import Answer
from notifier.subscriptions import AsyncpgSubscriptionRepository
from notifier.worker import Dispatcher
from pipeline_runtime.wakeups import PgWakeups

pytestmark = pytest.mark.integration

IDLE = 30.0  # the dispatcher's own poll: the test passes only if something else woke it


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, url: str, secret: str, message_id: str, body: bytes) -> Answer:
        self.sent.append(message_id)
        return Answer(200, None, 1.0)


class OneSecretPerTenant:
    """Signing secrets are not under test: every tenant signs with one fixed secret."""

    can_store_secrets = False

    async def signing_secrets(self, tenant_ids: set[str]) -> dict[str, list[str]]:
        return {tenant: ["secret"] for tenant in tenant_ids}

    async def rotate(self, tenant_id: str):
        raise NotImplementedError


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


async def insert_delivery(dsn: str, event_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO webhook_deliveries (delivery_id, event_id, request_id, target_url, payload)"
            " VALUES ($1, $2, $3, 'http://127.0.0.1:9/hook', '{}')",
            uuid.uuid4(),
            event_id,
            uuid.uuid4(),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("listen", [True, False])
async def test_a_committed_delivery_is_sent_well_before_the_idle_poll_only_when_listening(
    pool, fresh_database_url, listen
):
    sender = RecordingSender()
    dispatcher = Dispatcher(
        AsyncpgDeliveryRepository(pool),
        AsyncpgSubscriptionRepository(pool, None),
        sender,  # type: ignore[arg-type]
        OneSecretPerTenant(),  # type: ignore[arg-type]
        "secret",
        [1.0],
        concurrency=4,
        lease_seconds=60,
        idle_seconds=IDLE,
    )
    wakeups = PgWakeups(pool, "webhook_deliveries", dispatcher.wake)
    tasks = [asyncio.create_task(dispatcher.run())]
    if listen:
        tasks.append(asyncio.create_task(wakeups.run()))
        assert await wait_until(lambda: wakeups.listening, 10)
    await asyncio.sleep(0.5)  # the dispatcher's first pass found nothing: it sleeps IDLE seconds
    try:
        event_id = uuid.uuid4()
        await insert_delivery(fresh_database_url, event_id)
        sent = await wait_until(lambda: sender.sent == [str(event_id)], IDLE / 10)
        assert sent is listen
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.execute("DELETE FROM webhook_deliveries")
