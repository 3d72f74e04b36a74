"""Helpers for the notifier's real-PostgreSQL tests: rows seeded directly, tables snapshotted.

The app runs in-process with the real PostgreSQL adapters (app.database_resources) and without
its Kafka consumer and dispatcher loops, so nothing but the calls under test touches the rows.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from notifier.app import create_app, database_resources
from notifier.config import Settings
from notifier.deps import Resources
from notifier.repository import AsyncpgDeliveryRepository
from notifier.sender import AiohttpWebhookSender, create_session
from notifier.subscriptions import AsyncpgSubscriptionRepository
from notifier.tenant_secrets import AsyncpgTenantSecrets
from notifier.worker import Dispatcher
from pipeline_runtime.auth import AsyncpgKeyStore
from pipeline_runtime.netguard import AddressGuard

SECRETS_KEY = Fernet.generate_key().decode()
NOBODY = "http://127.0.0.1:9"  # the discard port: never answers a webhook
SCOPES = ["read", "webhooks"]


def settings_for(database_url: str, **overrides) -> Settings:
    return Settings(database_url=database_url, secrets_key=SECRETS_KEY, **overrides)


@contextlib.asynccontextmanager
async def running_notifier(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The notifier's routes on the real database; no consumer or dispatcher runs."""

    @contextlib.asynccontextmanager
    async def resources(s: Settings) -> AsyncIterator[Resources]:
        yield database_resources(pool, s)

    app = create_app(settings, resources=resources)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier.test") as client:
            yield client


async def new_key(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    """Authorization headers of a fresh key of `tenant` with the read and webhooks scopes."""
    _, key = await AsyncpgKeyStore(pool).create(tenant, SCOPES, f"test {tenant}")
    return {"Authorization": f"Bearer {key}"}


async def new_request(pool: asyncpg.Pool, tenant: str) -> uuid.UUID:
    request_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO requests (request_id, tenant_id, file_sha256, total_products, total_images)"
        " VALUES ($1, $2, 'x', 1, 1)",
        request_id,
        tenant,
    )
    return request_id


async def new_delivery(
    pool: asyncpg.Pool,
    tenant: str,
    request_id: uuid.UUID,
    *,
    url: str = NOBODY,
    subscription_id: uuid.UUID | None = None,
    status: str = "pending",
    due_in: float = 0.0,
    attempts: int = 0,
) -> uuid.UUID:
    """A delivery row as the consumer would write it; `due_in` seconds until it is due."""
    delivery_id = uuid.uuid4()
    payload = json.dumps({"request_id": str(request_id)}).encode()
    await pool.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event_id, request_id, tenant_id, target_url,"
        " payload, status, attempts, subscription_id, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10::interval)",
        delivery_id,
        uuid.uuid4(),
        request_id,
        tenant,
        url,
        payload,
        status,
        attempts,
        subscription_id,
        timedelta(seconds=due_in),
    )
    return delivery_id


async def snapshot(pool: asyncpg.Pool, tenant: str | None = None) -> dict[str, list[dict]]:
    """Every row of the notifier's tables (of one tenant, if given), in a stable order."""
    where = "WHERE tenant_id = $1 OR $1::text IS NULL"
    queries = {
        # Constant table names and filter; the tenant is a bound parameter.
        "webhook_subscriptions": f"SELECT * FROM webhook_subscriptions {where} ORDER BY subscription_id",  # noqa: S608
        "tenant_signing_secrets": f"SELECT * FROM tenant_signing_secrets {where} ORDER BY secret_id",  # noqa: S608
        "webhook_deliveries": f"SELECT * FROM webhook_deliveries {where} ORDER BY delivery_id",  # noqa: S608
        "webhook_attempts": "SELECT a.* FROM webhook_attempts a JOIN webhook_deliveries d USING (delivery_id)"  # noqa: S608
        f" {where.replace('tenant_id', 'd.tenant_id')} ORDER BY a.id",
    }
    return {table: [dict(r) for r in await pool.fetch(sql, tenant)] for table, sql in queries.items()}


@contextlib.asynccontextmanager
async def real_dispatcher(
    pool: asyncpg.Pool,
    *,
    excerpt_bytes: int = 4096,
    timeout: float = 5.0,
    settings: Settings | None = None,
) -> AsyncIterator[Dispatcher]:
    """The dispatcher with the real repositories and sender, allowed to reach 127.0.0.1 only.

    With `settings`, its subscription and tenant secrets are those of database_resources (the
    app's own wiring); without, secrets cannot be stored and the unshared fallback signs.
    """
    guard = AddressGuard.from_setting("127.0.0.1/32")
    session = create_session(guard, timeout)
    stored = database_resources(pool, settings) if settings is not None else None
    try:
        yield Dispatcher(
            AsyncpgDeliveryRepository(pool),
            stored.subscriptions if stored else AsyncpgSubscriptionRepository(pool, None),
            AiohttpWebhookSender(session, guard, excerpt_bytes),
            stored.tenant_secrets if stored else AsyncpgTenantSecrets(pool, None, 0.0),
            "whsec_" + "A" * 44,
            [1.0],
            concurrency=4,
            lease_seconds=30,
            idle_seconds=0.1,
        )
    finally:
        await session.close()
