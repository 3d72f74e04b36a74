"""Where compressed images go: a local directory served over HTTP (deterministic keys)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol
from uuid import UUID


def object_key(request_id: UUID, image_id: UUID) -> str:
    """One key per image slot, so a re-run overwrites instead of duplicating."""
    return f"{request_id}/{image_id}.jpg"


class ImageStore(Protocol):
    async def save(self, request_id: UUID, image_id: UUID, data: bytes) -> str: ...


class LocalImageStore:
    """Writes atomically (temporary file, then rename) and answers the public URL."""

    def __init__(self, root: Path, base_url: str) -> None:
        self._root = root
        self._base_url = base_url.rstrip("/")

    async def save(self, request_id: UUID, image_id: UUID, data: bytes) -> str:
        key = object_key(request_id, image_id)
        await asyncio.to_thread(self._write, self._root / key, data)
        return f"{self._base_url}/{key}"

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
