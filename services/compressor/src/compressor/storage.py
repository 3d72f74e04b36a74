"""Where compressed images go: a local directory served over HTTP, or any S3-compatible store.

Keys are deterministic: one per source URL within a request, so a replayed or re-run image
overwrites its object instead of adding one, and a URL repeated within a request (which is
compressed once) has one object that every slot showing it points to. They are also keyed
(an HMAC with the deployment's media key secret), so nobody who knows a request id and its
input URLs can compute where the outputs are: the name is only learnt from the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit
from uuid import UUID

JPEG_CONTENT_TYPE = "image/jpeg"


def url_digest(input_url: str) -> str:
    """A stable name for a source URL (hex SHA-256 of its exact text)."""
    return hashlib.sha256(input_url.encode()).hexdigest()


MIN_MEDIA_KEY_SECRET = 32  # characters; what devstack generates is 43


def object_key(request_id: UUID, input_url: str, extension: str = "jpg", *, secret: bytes) -> str:
    """`<request id>/<128 bits of HMAC-SHA256(secret, request id and URL)>.<extension>`.

    Stable for as long as the secret is (so re-runs overwrite), unguessable without it. The
    extension follows the stored object's format (a kept original keeps its own).
    """
    keyed = hmac.new(secret, f"{request_id}\n{input_url}".encode(), hashlib.sha256).hexdigest()
    return f"{request_id}/{keyed[:32]}.{extension}"


class StorageError(Exception):
    """The store did not take the object; worth another attempt later."""


class ImageStore(Protocol):
    async def save(self, key: str, data: bytes, content_type: str = JPEG_CONTENT_TYPE) -> str:
        """Store `data` under `key`; answer the absolute URL it can be fetched from."""
        ...


class LocalImageStore:
    """Writes atomically (temporary file, then rename) under a directory served at `base_url`."""

    def __init__(self, root: Path, base_url: str) -> None:
        self._root = root
        self._base_url = base_url.rstrip("/")

    async def save(self, key: str, data: bytes, content_type: str = JPEG_CONTENT_TYPE) -> str:
        # The file server that publishes the directory derives Content-Type from the extension.
        try:
            await asyncio.to_thread(self._write, self._root / key, data)
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc
        return f"{self._base_url}/{quote(key)}"

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


class S3ImageStore:
    """PUTs objects through an aiobotocore S3 client; URLs are `public_base_url/key`.

    The URLs are fetchable when the bucket (or a CDN in front of it) serves them publicly,
    usually by a bucket policy; stores that use ACLs can be given one for each object instead.
    """

    def __init__(self, client: Any, bucket: str, prefix: str, public_base_url: str, acl: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._public = public_base_url.rstrip("/")
        self._extra = {"ACL": acl} if acl else {}

    def full_key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    async def save(self, key: str, data: bytes, content_type: str = JPEG_CONTENT_TYPE) -> str:
        full = self.full_key(key)
        try:
            await self._client.put_object(
                Bucket=self._bucket, Key=full, Body=data, ContentType=content_type, **self._extra
            )
        except Exception as exc:  # botocore's errors share no useful base class
            raise StorageError(f"cannot put s3://{self._bucket}/{full}: {exc}") from exc
        return f"{self._public}/{quote(full)}"


@dataclass(frozen=True)
class FileLocation:
    root: Path


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


def parse_storage_url(url: str) -> FileLocation | S3Location:
    """`file:///absolute/dir` or `s3://bucket/optional/prefix`."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"storage URL {url!r}: use file:///absolute/path")
        return FileLocation(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket")
        return S3Location(parts.netloc, unquote(parts.path).strip("/"))
    raise ValueError(f"storage URL {url!r}: the scheme must be file or s3")


def s3_public_base_url(bucket: str, endpoint_url: str | None, region: str, explicit: str = "") -> str:
    """Where objects are fetched: an explicit base (a CDN), the endpoint path-style, or AWS."""
    if explicit:
        return explicit.rstrip("/")
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}"
    return f"https://{bucket}.s3.{region}.amazonaws.com"


@dataclass(frozen=True)
class StorageSettings:
    """What `open_store` needs (a subset of the service settings)."""

    storage_url: str
    media_dir: Path
    media_base_url: str
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_public_base_url: str = ""
    s3_addressing_style: str = "path"
    s3_acl: str = ""
    max_connections: int = 32


@contextlib.asynccontextmanager
async def open_store(settings: StorageSettings) -> AsyncIterator[ImageStore]:
    """The store the settings name; an S3 client is opened here and closed on exit."""
    location = parse_storage_url(settings.storage_url) if settings.storage_url else None
    if location is None or isinstance(location, FileLocation):
        root = location.root if location else settings.media_dir
        yield LocalImageStore(root, settings.media_base_url)
        return
    async with _s3_client(settings) as client:
        endpoint = settings.s3_endpoint_url or None
        public = s3_public_base_url(
            location.bucket, endpoint, settings.s3_region, settings.s3_public_base_url
        )
        yield S3ImageStore(client, location.bucket, location.prefix, public, settings.s3_acl)


@contextlib.asynccontextmanager
async def _s3_client(settings: StorageSettings) -> AsyncIterator[Any]:
    # Imported here: botocore takes a while to import and only S3 deployments need it.
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        s3={"addressing_style": settings.s3_addressing_style},
        max_pool_connections=settings.max_connections,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    async with get_session().create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region,
        config=config,
    ) as client:
        yield client
