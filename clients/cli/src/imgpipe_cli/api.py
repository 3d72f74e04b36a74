"""The pipeline's HTTP API as the CLI uses it: upload (ingest), status, images, output CSV (tracker)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .outcome import ApiError, CliError, ServiceUnreachable

UPLOAD_ATTEMPTS = 3
UPLOAD_BACKOFF_SECONDS = 0.5
RETRYABLE_STATUSES = frozenset({502, 503, 504})
IMAGES_PAGE_SIZE = 500
MAX_IMAGE_PAGES = 10_000
DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Connection:
    """Where the services are and how to authenticate; transport is for tests (httpx.MockTransport)."""

    ingest_url: str
    api_url: str
    api_key: str | None = None
    timeout: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    webhook_url: str | None = None
    quality: int | str | None = None  # 1-95 or "auto"
    idempotency_key: str | None = None
    format: str | None = None  # jpeg | webp | avif; None: the server's default (jpeg)
    optimize: bool | None = None
    progressive: bool | None = None


class BearerForOwnServices(httpx.Auth):
    """Sends `Authorization: Bearer` only to the pipeline's own origins, never to a media host elsewhere."""

    def __init__(self, api_key: str, trusted_urls: list[str]):
        self.header = f"Bearer {api_key}"
        self.trusted_origins = {origin_of(httpx.URL(url)) for url in trusted_urls}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin_of(request.url) in self.trusted_origins:
            request.headers["Authorization"] = self.header
        yield request


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default_port)


class PipelineApi:
    """One httpx client for a command's whole run; use as an async context manager."""

    def __init__(self, connection: Connection):
        self.ingest_url = connection.ingest_url.rstrip("/")
        self.api_url = connection.api_url.rstrip("/")
        auth = None
        if connection.api_key:
            auth = BearerForOwnServices(connection.api_key, [self.ingest_url, self.api_url])
        self.client = httpx.AsyncClient(
            auth=auth, timeout=connection.timeout, transport=connection.transport, follow_redirects=True
        )

    async def __aenter__(self) -> PipelineApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    async def upload(self, upload: Upload) -> dict[str, Any]:
        """POST /upload, retried on connection errors and 502/503/504 (safe: same Idempotency-Key)."""
        for attempt in range(1, UPLOAD_ATTEMPTS):
            try:
                return await self._post_upload(upload)
            except (ServiceUnreachable, ApiError) as error:
                if not is_transient(error):
                    raise
            await asyncio.sleep(UPLOAD_BACKOFF_SECONDS * 2**attempt)
        return await self._post_upload(upload)

    async def _post_upload(self, upload: Upload) -> dict[str, Any]:
        form = {
            "webhook_url": upload.webhook_url,
            "quality": upload.quality,
            "format": upload.format,
            "optimize": _form_bool(upload.optimize),
            "progressive": _form_bool(upload.progressive),
        }
        headers = {"Idempotency-Key": upload.idempotency_key} if upload.idempotency_key else {}
        response = await self._send(
            "POST",
            f"{self.ingest_url}/upload",
            files={"file": (upload.filename, upload.data, "text/csv")},
            data={name: str(value) for name, value in form.items() if value is not None},
            headers=headers,
        )
        return json_object(response)

    async def cancel(self, request_id: str) -> dict[str, Any]:
        response = await self._send("DELETE", f"{self.ingest_url}/requests/{path_part(request_id)}")
        return json_object(response)

    async def status(self, request_id: str) -> dict[str, Any]:
        response = await self._send("GET", f"{self.api_url}/status/{path_part(request_id)}")
        return json_object(response)

    async def images(
        self, request_id: str, page_size: int = IMAGES_PAGE_SIZE
    ) -> AsyncIterator[dict[str, Any]]:
        """Every image of a request in input order, following next_cursor (bounded in pages)."""
        url = f"{self.api_url}/requests/{path_part(request_id)}/images"
        cursor: str | None = None
        for _ in range(MAX_IMAGE_PAGES):
            params = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = json_object(await self._send("GET", url, params=params))
            for item in page.get("items", []):
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
        raise CliError("Too many pages", f"stopped after {MAX_IMAGE_PAGES} pages of images")

    def output_csv_url(self, request_id: str) -> str:
        return f"{self.api_url}/requests/{path_part(request_id)}/output.csv"

    async def save(self, url: str, path: Path) -> int:
        """Stream `url` into `path` (written whole or not at all); returns the bytes written."""
        partial = path.with_name(path.name + ".part")
        try:
            async with self.client.stream("GET", url) as response:
                if response.is_error:
                    await response.aread()
                    raise error_of(response)
                written = await write_stream(response, partial)
            os.replace(partial, path)
            return written
        except httpx.TransportError as error:
            raise ServiceUnreachable(url, describe(error)) from error
        except OSError as error:
            raise CliError("Cannot write file", f"{path}: {error.strerror or error}") from error
        finally:
            partial.unlink(missing_ok=True)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.TransportError as error:
            raise ServiceUnreachable(url, describe(error)) from error
        if response.is_error:
            raise error_of(response)
        return response


async def write_stream(response: httpx.Response, path: Path) -> int:
    written = 0
    with path.open("wb") as file:
        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
            file.write(chunk)
            written += len(chunk)
    return written


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object a successful answer carries; anything else is the service misbehaving."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise CliError("Unexpected answer", f"{response.request.url} did not answer with a JSON object")
    return body


def error_of(response: httpx.Response) -> ApiError:
    """An ApiError carrying the problem document, or a stand-in when the body is not JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:300]
        body = {"title": f"HTTP {response.status_code} {response.reason_phrase}".strip(), "detail": text}
    return ApiError(response.status_code, body)


def is_transient(error: CliError) -> bool:
    return isinstance(error, ServiceUnreachable) or (
        isinstance(error, ApiError) and error.status in RETRYABLE_STATUSES
    )


def path_part(value: str) -> str:
    return quote(value, safe="")


def describe(error: httpx.TransportError) -> str:
    return str(error) or type(error).__name__


def _form_bool(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()
