"""Global webhook subscriptions: each with its own signing secret, encrypted at rest (Fernet).

Every statement a tenant's call reaches carries the tenant, writes included: deleting another
tenant's subscription changes nothing, not even that tenant's pending deliveries.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
from cryptography.fernet import Fernet
from pipeline_runtime.database import ACQUIRE_TIMEOUT

from .signing import new_secret

_CREATE = """
INSERT INTO webhook_subscriptions (subscription_id, tenant_id, url, secret_encrypted, description)
SELECT $1, $2, $3, $4, $5
 WHERE (SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $2 AND deleted_at IS NULL) < $6
RETURNING subscription_id, tenant_id, url, description, created_at"""


@dataclass(frozen=True)
class Subscription:
    subscription_id: UUID
    tenant_id: str
    url: str
    description: str | None
    created_at: datetime


class SubscriptionLimitReached(Exception):
    """The tenant already has as many subscriptions as it may."""


class SubscriptionRepository(Protocol):
    @property
    def can_store_secrets(self) -> bool: ...

    async def create(self, tenant_id: str, url: str, description: str | None) -> tuple[Subscription, str]: ...

    async def list(self, tenant_id: str) -> list[Subscription]: ...

    async def delete(self, tenant_id: str, subscription_id: UUID) -> bool: ...

    async def targets_of(self, tenant_id: str) -> builtins.list[tuple[UUID, str]]: ...

    async def secrets_of(self, subscription_ids: set[UUID]) -> dict[UUID, str]: ...


class SecretBox:
    """Encrypts signing secrets before they reach the database, and decrypts them to sign."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, token: bytes) -> str:
        return self._fernet.decrypt(bytes(token)).decode()


class AsyncpgSubscriptionRepository:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox | None, max_per_tenant: int = 25) -> None:
        self._pool = pool
        self._box = box
        self._max = max_per_tenant

    @property
    def can_store_secrets(self) -> bool:
        return self._box is not None

    async def create(self, tenant_id: str, url: str, description: str | None) -> tuple[Subscription, str]:
        """A new subscription and its secret; the secret is returned only here, once."""
        if self._box is None:  # routes check can_store_secrets first; this guards other callers
            raise RuntimeError("no secrets key configured (NOTIFIER_SECRETS_KEY)")
        secret = new_secret()
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            # One creation per tenant at a time, so concurrent calls cannot pass the cap together.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('webhook_subscriptions:' || $1))", tenant_id
            )
            row = await conn.fetchrow(
                _CREATE, uuid.uuid4(), tenant_id, url, self._box.seal(secret), description, self._max
            )
        if row is None:
            raise SubscriptionLimitReached(f"a tenant may have at most {self._max} subscriptions")
        return Subscription(**dict(row)), secret

    async def list(self, tenant_id: str) -> list[Subscription]:
        rows = await self._pool.fetch(
            "SELECT subscription_id, tenant_id, url, description, created_at FROM webhook_subscriptions"
            " WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT $2",
            tenant_id,
            self._max,
        )
        return [Subscription(**dict(r)) for r in rows]

    async def delete(self, tenant_id: str, subscription_id: UUID) -> bool:
        """Remove the tenant's subscription (kept for history) and cancel its pending deliveries.

        The subscription is marked first, under the tenant: if it is not the caller's, nothing
        else runs and the transaction changes nothing.
        """
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            deleted = await conn.execute(
                "UPDATE webhook_subscriptions SET deleted_at = now()"
                " WHERE subscription_id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                subscription_id,
                tenant_id,
            )
            if not deleted.endswith(" 1"):
                return False
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'dead', last_error = 'subscription deleted'"
                " WHERE subscription_id = $1 AND tenant_id = $2 AND status = 'pending'",
                subscription_id,
                tenant_id,
            )
        return True

    async def targets_of(self, tenant_id: str) -> builtins.list[tuple[UUID, str]]:  # `list` is a method here
        rows = await self._pool.fetch(
            "SELECT subscription_id, url FROM webhook_subscriptions"
            " WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT $2",
            tenant_id,
            self._max,
        )
        return [(r["subscription_id"], r["url"]) for r in rows]

    async def secrets_of(self, subscription_ids: set[UUID]) -> dict[UUID, str]:
        if not subscription_ids or self._box is None:
            return {}
        rows = await self._pool.fetch(
            "SELECT subscription_id, secret_encrypted FROM webhook_subscriptions"
            " WHERE subscription_id = ANY($1::uuid[]) AND deleted_at IS NULL",
            list(subscription_ids),
        )
        return {r["subscription_id"]: self._box.open(r["secret_encrypted"]) for r in rows}
