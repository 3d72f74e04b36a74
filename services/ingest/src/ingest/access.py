"""What ingest adds to pipeline_runtime's keys: the key store it needs and the shape of tenant ids."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from pipeline_runtime.auth import ApiKeyInfo, Principal

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class KeyStore(Protocol):
    """What ingest needs of the key table (pipeline_runtime.auth.AsyncpgKeyStore)."""

    async def find(self, key: str) -> Principal | None: ...
    async def create(
        self, tenant_id: str, scopes: list[str], name: str | None = None
    ) -> tuple[ApiKeyInfo, str]: ...
    async def list(self, tenant_id: str | None = None) -> list[ApiKeyInfo]: ...
    async def revoke(self, key_id: UUID, tenant_id: str | None = None) -> bool: ...
