"""API keys, tenants and scopes: keys are random, stored hashed, shown once; requests carry a Bearer key."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

KEY_PREFIX = "imgp_"
SCOPES = ("upload", "read", "webhooks", "admin")
DEFAULT_TENANT = "default"


def new_api_key() -> str:
    """A 256-bit random key with a recognisable prefix."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def hash_key(key: str) -> bytes:
    """SHA-256 suffices: keys are 256-bit random, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its tenant and what it may do."""

    key_id: UUID
    tenant_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: UUID
    tenant_id: str
    prefix: str
    scopes: list[str]
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AuthError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_scopes(value: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; unknown: {unknown}")
    return sorted(set(scopes))


_COLUMNS = "key_id, tenant_id, prefix, scopes, name, created_at, last_used_at, revoked_at"


class AsyncpgKeyStore:
    """Keys in PostgreSQL; `last_used_at` is refreshed at most once a minute per key."""

    def __init__(self, pool: asyncpg.Pool, *, touch_every: float = 60.0) -> None:
        self._pool = pool
        self._touch_every = touch_every
        self._touched: dict[UUID, float] = {}

    async def create(
        self, tenant_id: str, scopes: list[str], name: str | None = None
    ) -> tuple[ApiKeyInfo, str]:
        key = new_api_key()
        row = await self._pool.fetchrow(
            # _COLUMNS is a constant column list; every value is a bind parameter.
            f"INSERT INTO api_keys (key_id, tenant_id, prefix, key_hash, scopes, name)"  # noqa: S608
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            uuid.uuid4(),
            tenant_id,
            key[:12],
            hash_key(key),
            parse_scopes(scopes),
            name,
        )
        return ApiKeyInfo(**dict(row)), key

    async def ensure(self, key: str, tenant_id: str, scopes: list[str], name: str) -> None:
        """Make a known key exist (the bootstrap key); nothing changes if it already does."""
        await self._pool.execute(
            "INSERT INTO api_keys (key_id, tenant_id, prefix, key_hash, scopes, name)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO NOTHING",
            uuid.uuid4(),
            tenant_id,
            key[:12],
            hash_key(key),
            parse_scopes(scopes),
            name,
        )

    async def list(self, tenant_id: str | None = None) -> list[ApiKeyInfo]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY created_at",  # noqa: S608
            tenant_id,
        )
        return [ApiKeyInfo(**dict(r)) for r in rows]

    async def revoke(self, key_id: UUID, tenant_id: str | None = None) -> bool:
        result = await self._pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL"
            " AND ($2::text IS NULL OR tenant_id = $2)",
            key_id,
            tenant_id,
        )
        return str(result).endswith(" 1")

    async def find(self, key: str) -> Principal | None:
        row = await self._pool.fetchrow(
            "SELECT key_id, tenant_id, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(key),
        )
        if row is None:
            return None
        await self._touch(row["key_id"])
        return Principal(row["key_id"], row["tenant_id"], frozenset(row["scopes"]))

    async def _touch(self, key_id: UUID) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -1e9) >= self._touch_every:
            self._touched[key_id] = now
            await self._pool.execute("UPDATE api_keys SET last_used_at = now() WHERE key_id = $1", key_id)


KeyLookup = Callable[[str], Awaitable[Principal | None]]


async def authenticate(authorization: str | None, lookup: KeyLookup, scope: str) -> Principal:
    """The caller of a request, or AuthError: 401 without a valid key, 403 without the scope."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError(401, "send an API key as `Authorization: Bearer <key>`")
    principal = await lookup(key.strip())
    if principal is None:
        raise AuthError(401, "the API key is unknown or revoked")
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise AuthError(403, f"the API key lacks the `{scope}` scope")
    return principal
