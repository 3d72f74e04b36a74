"""The notifier starts while PostgreSQL is down, says it is not ready, and recovers by itself.

In a module of its own: stopping the server disturbs every client of the test stack for a moment.
The app runs in-process with its real resources (pool, Kafka consumer, dispatcher).
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from notifier.app import create_app
from pipeline_runtime.auth import new_api_key
from pipeline_runtime.kafka import KafkaSettings

from tests.integration.notifier.support import settings_for
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_control(infrastructure):
    """Stop and start the test stack's PostgreSQL; it is always running again after the test."""
    from devstack import postgres

    if infrastructure.external_database:
        pytest.skip("PostgreSQL is external (DATABASE_URL): this test cannot stop it")
    try:
        yield postgres
    finally:
        postgres.start(infrastructure)


async def test_starts_without_postgres_reports_not_ready_and_recovers(
    infrastructure, postgres_control, fresh_database_url, bootstrap_servers
):
    key = new_api_key()
    settings = settings_for(
        fresh_database_url,
        kafka=KafkaSettings(bootstrap_servers=bootstrap_servers),
        group_id=f"notifier-outage-{uuid.uuid4().hex[:8]}",
        bootstrap_api_key=key,
    )
    await asyncio.to_thread(postgres_control.stop, infrastructure)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://notifier.test", headers={"Authorization": f"Bearer {key}"}
        ) as client:
            not_ready = await client.get("/readyz")
            alive = await client.get("/healthz")
            call = await client.get("/dead-letters")

            await asyncio.to_thread(postgres_control.start, infrastructure)  # runs its own event loop

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            async def serving() -> bool:  # the bootstrap key is written once PostgreSQL is back
                return (await client.get("/dead-letters")).status_code == 200

            came_back = await wait_until(ready, timeout=60, interval=0.5)
            served = await wait_until(serving, timeout=30, interval=0.5)

    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert "database" in not_ready.json()["detail"]
    assert alive.status_code == 200
    assert call.status_code == 503  # the key store is unreachable: retry later, never a 500
    assert came_back
    assert served
