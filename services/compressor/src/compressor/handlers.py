"""Handling one image.requested event: download, compress off the loop, store, report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from pipeline_schemas import ImageCompressed, ImageCompressionFailed, ImageRequested

from .compression import CompressedImage, CompressionOptions, ImageRejected
from .downloader import DownloadError
from .retrying import RetryPolicy
from .storage import ImageStore

log = structlog.get_logger(__name__)

Compress = Callable[[bytes, CompressionOptions], Awaitable[CompressedImage]]
ImageResult = ImageCompressed | ImageCompressionFailed


class Downloader(Protocol):
    async def fetch(self, url: str) -> bytes: ...


@dataclass(frozen=True)
class Deps:
    downloader: Downloader
    compress: Compress
    store: ImageStore
    retry: RetryPolicy
    max_pixels: int


async def handle_image_requested(event: ImageRequested, deps: Deps) -> ImageResult:
    """Always returns a result event: one broken image fails alone, with a reason."""
    attempts = 0
    try:
        data, attempts = await download_with_retries(event.input_url, deps)
        image = await deps.compress(data, CompressionOptions(event.quality, deps.max_pixels))
        output_url = await deps.store.save(event.request_id, event.image_id, image.data)
    except (DownloadError, ImageRejected) as exc:
        log.info("image.failed", reason=exc.code, message=exc.message)
        return ImageCompressionFailed(
            request_id=event.request_id,
            tenant_id=event.tenant_id,
            image_id=event.image_id,
            reason_code=exc.code,
            message=exc.message,
            attempts=getattr(exc, "attempts", max(attempts, 1)),
        )
    log.info("image.compressed", input_bytes=len(data), output_bytes=len(image.data))
    return ImageCompressed(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        image_id=event.image_id,
        output_url=output_url,
        input_bytes=len(data),
        output_bytes=len(image.data),
        width=image.width,
        height=image.height,
        kept_original=image.kept_original,
    )


async def download_with_retries(url: str, deps: Deps) -> tuple[bytes, int]:
    """Fetch `url`, retrying transient failures with backoff; returns the bytes and attempts made."""
    attempt = 1
    while True:
        try:
            return await deps.downloader.fetch(url), attempt
        except DownloadError as exc:
            if not deps.retry.may_retry(attempt, exc.transient):
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            delay = deps.retry.delay_before(attempt + 1, exc.retry_after)
            log.info("image.retrying", reason=exc.code, attempt=attempt, delay=round(delay, 2))
            await asyncio.sleep(delay)
            attempt += 1
