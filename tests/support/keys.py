"""An in-memory key store with AsyncpgKeyStore's methods, for apps tested with fake resources."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from pipeline_runtime.auth import ApiKeyInfo, Principal, new_api_key, parse_scopes


class MemoryKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKeyInfo] = {}

    def add(self, tenant_id: str, *scopes: str, key: str | None = None) -> str:
        key = key or new_api_key()
        self.keys[key] = self._info(tenant_id, list(scopes), None, key)
        return key

    @staticmethod
    def _info(tenant_id: str, scopes: list[str], name: str | None, key: str) -> ApiKeyInfo:
        now = datetime.now(UTC)
        return ApiKeyInfo(uuid.uuid4(), tenant_id, key[:12], parse_scopes(scopes), name, now, None, None)

    async def find(self, key: str) -> Principal | None:
        info = self.keys.get(key)
        if info is None or info.revoked_at is not None:
            return None
        return Principal(info.key_id, info.tenant_id, frozenset(info.scopes))

    async def create(
        self, tenant_id: str, scopes: list[str], name: str | None = None
    ) -> tuple[ApiKeyInfo, str]:
        key = new_api_key()
        self.keys[key] = self._info(tenant_id, scopes, name, key)
        return self.keys[key], key

    async def list(self, tenant_id: str | None = None) -> list[ApiKeyInfo]:
        return [i for i in self.keys.values() if tenant_id is None or i.tenant_id == tenant_id]

    async def revoke(self, key_id: UUID, tenant_id: str | None = None) -> bool:
        for key, info in self.keys.items():
            if info.key_id == key_id and info.revoked_at is None and tenant_id in (None, info.tenant_id):
                self.keys[key] = ApiKeyInfo(**{**info.__dict__, "revoked_at": datetime.now(UTC)})
                return True
        return False
