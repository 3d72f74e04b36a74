"""Each tenant's own signing secret for its per-request webhooks, encrypted at rest (Fernet).

A tenant has one current secret, made on first need, and after a rotation one previous secret
that keeps signing until its overlap ends: during the overlap every webhook carries a signature
of each, so a receiver holding either verifies (Standard Webhooks allows several). Rotating again
during an overlap ends the earlier one, so a tenant never has more than two secrets.

Every statement carries the tenant, writes included: one tenant's rotation changes nothing of
another's. The default tenant's first secret is NOTIFIER_SIGNING_SECRET when that is set (the
secret per-request webhooks were signed with before secrets were per tenant), so its receivers
keep verifying until it rotates.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg
from pipeline_runtime.database import ACQUIRE_TIMEOUT

from .signing import new_secret
from .subscriptions import SecretBox

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tenant_signing_secrets:' || $1))"

_VALID = """
SELECT tenant_id, secret_encrypted FROM tenant_signing_secrets
 WHERE tenant_id = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > now())
 ORDER BY tenant_id, created_at DESC"""

_CREATE_FIRST = """
INSERT INTO tenant_signing_secrets (secret_id, tenant_id, secret_encrypted) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) WHERE expires_at IS NULL DO NOTHING"""

_RETIRE = """
UPDATE tenant_signing_secrets SET expires_at = now() + make_interval(secs => $2)
 WHERE tenant_id = $1 AND expires_at IS NULL RETURNING expires_at"""

_INSERT = """
INSERT INTO tenant_signing_secrets (secret_id, tenant_id, secret_encrypted) VALUES ($1, $2, $3)
RETURNING created_at"""


@dataclass(frozen=True)
class Rotated:
    """A tenant's new secret (shown only here) and until when the previous one still signs."""

    secret: str
    created_at: datetime
    previous_expires_at: datetime | None


class TenantSecrets(Protocol):
    @property
    def can_store_secrets(self) -> bool: ...

    async def signing_secrets(self, tenant_ids: set[str]) -> dict[str, list[str]]: ...

    async def rotate(self, tenant_id: str) -> Rotated: ...


class AsyncpgTenantSecrets:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox | None,
        overlap_seconds: float,
        first_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self._pool = pool
        self._box = box
        self._overlap = overlap_seconds
        self._first = dict(first_secrets or {})  # tenant -> the secret its first one must be

    @property
    def can_store_secrets(self) -> bool:
        return self._box is not None

    async def signing_secrets(self, tenant_ids: set[str]) -> dict[str, list[str]]:
        """The secrets that sign each tenant's webhooks now, newest first; made where missing."""
        if not tenant_ids or self._box is None:
            return {}
        box = self._box
        found = await self._valid(box, tenant_ids)
        missing = tenant_ids - found.keys()
        if missing:
            for tenant_id in sorted(missing):
                await self._create_first(box, tenant_id)
            found |= await self._valid(box, missing)  # a concurrent creation may have won: read back
        return found

    async def rotate(self, tenant_id: str) -> Rotated:
        """A new current secret; the old one signs too until the overlap ends, older ones stop."""
        if self._box is None:  # routes check can_store_secrets first; this guards other callers
            raise RuntimeError("no secrets key configured (NOTIFIER_SECRETS_KEY)")
        secret = new_secret()
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            # One rotation per tenant at a time, so two concurrent calls cannot both keep an old one.
            await conn.execute(_LOCK, tenant_id)
            await conn.execute(
                "DELETE FROM tenant_signing_secrets WHERE tenant_id = $1 AND expires_at IS NOT NULL",
                tenant_id,
            )
            previous = await conn.fetchval(_RETIRE, tenant_id, self._overlap)
            created = await conn.fetchval(_INSERT, uuid.uuid4(), tenant_id, self._box.seal(secret))
        return Rotated(secret, created, previous)

    async def _create_first(self, box: SecretBox, tenant_id: str) -> None:
        secret = self._first.get(tenant_id) or new_secret()
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            # The rotation's lock: a first secret never slips in between its retire and insert.
            await conn.execute(_LOCK, tenant_id)
            await conn.execute(_CREATE_FIRST, uuid.uuid4(), tenant_id, box.seal(secret))

    async def _valid(self, box: SecretBox, tenant_ids: set[str]) -> dict[str, list[str]]:
        rows = await self._pool.fetch(_VALID, sorted(tenant_ids))
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["tenant_id"], []).append(box.open(row["secret_encrypted"]))
        return found
