"""Global webhook subscriptions: each with its own signing secret, encrypted at rest (Fernet)."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from cryptography.fernet import Fernet

from .signing import new_secret


@dataclass(frozen=True)
class Subscription:
    subscription_id: UUID
    tenant_id: str
    url: str
    description: str | None
    created_at: datetime


class SecretBox:
    """Encrypts signing secrets before they reach the database, and decrypts them to sign."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, token: bytes) -> str:
        return self._fernet.decrypt(bytes(token)).decode()


class AsyncpgSubscriptionRepository:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox | None) -> None:
        self._pool = pool
        self._box = box

    @property
    def can_store_secrets(self) -> bool:
        return self._box is not None

    async def create(self, tenant_id: str, url: str, description: str | None) -> tuple[Subscription, str]:
        """A new subscription and its secret; the secret is returned only here, once."""
        if self._box is None:  # routes check can_store_secrets first; this guards other callers
            raise RuntimeError("no secrets key configured (NOTIFIER_SECRETS_KEY)")
        secret = new_secret()
        row = await self._pool.fetchrow(
            "INSERT INTO webhook_subscriptions"
            " (subscription_id, tenant_id, url, secret_encrypted, description)"
            " VALUES ($1, $2, $3, $4, $5)"
            " RETURNING subscription_id, tenant_id, url, description, created_at",
            uuid.uuid4(),
            tenant_id,
            url,
            self._box.seal(secret),
            description,
        )
        return Subscription(**dict(row)), secret

    async def list(self, tenant_id: str) -> list[Subscription]:
        rows = await self._pool.fetch(
            "SELECT subscription_id, tenant_id, url, description, created_at FROM webhook_subscriptions"
            " WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at",
            tenant_id,
        )
        return [Subscription(**dict(r)) for r in rows]

    async def delete(self, tenant_id: str, subscription_id: UUID) -> bool:
        """Remove a subscription (kept for history); its pending deliveries are cancelled (dead-lettered)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'dead', last_error = 'subscription deleted'"
                " WHERE subscription_id = $1 AND status = 'pending'",
                subscription_id,
            )
            result = await conn.execute(
                "UPDATE webhook_subscriptions SET deleted_at = now()"
                " WHERE subscription_id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                subscription_id,
                tenant_id,
            )
        return result.endswith(" 1")

    async def targets_of(self, tenant_id: str) -> builtins.list[tuple[UUID, str]]:  # `list` is a method here
        rows = await self._pool.fetch(
            "SELECT subscription_id, url FROM webhook_subscriptions WHERE tenant_id = $1 AND deleted_at IS NULL",
            tenant_id,
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
