"""Handling one image.requested event: claim its URL, download, compress off the loop, store.

The handler decides; the worker acts. Every outcome is one of: publish a result (success or a
failure with its reason), re-enqueue the event for a later attempt, or wait a little because
another slot of the same request is already working on the same URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from pipeline_schemas import (
    ImageCompressed,
    ImageCompressionFailed,
    ImageRequested,
    ImageResult,
    new_event_id,
    utc_now,
)

from .auto_quality import DEFAULT_THRESHOLD
from .compression import CompressedImage, CompressionOptions, ImageRejected
from .downloader import DownloadError
from .encoders import EXTENSIONS
from .metrics import BYTES_IN, BYTES_OUT, IMAGES_FAILED, IMAGES_PROCESSED, STAGE_LATENCY
from .retrying import RetryPolicy
from .sources import CLAIMS_UNAVAILABLE, Busy, Claim, NoClaims, Owned, Settled, SourceClaims, as_own_result
from .storage import ImageStore, StorageError, object_key, url_digest

log = structlog.get_logger(__name__)

Compress = Callable[[bytes, CompressionOptions], Awaitable[CompressedImage]]


class Downloader(Protocol):
    async def fetch(self, url: str) -> bytes: ...


class TransientFailure(Exception):
    """Something on our side failed in a way another attempt may not (e.g. a crashed pool worker)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[TransientFailure], tuple[str, str]]:
        return (type(self), (self.code, self.message))


@dataclass(frozen=True)
class Publish:
    """Send `result` to image.results; the message is done once the broker has it."""

    result: ImageResult


@dataclass(frozen=True)
class Requeue:
    """Send `event` (the next attempt) back to image.requested, not to be worked on before `not_before`."""

    event: ImageRequested
    not_before: float  # epoch seconds
    reason: str


@dataclass(frozen=True)
class Wait:
    """Look at the same message again in `seconds` (another slot owns its URL)."""

    seconds: float


Outcome = Publish | Requeue | Wait


@dataclass(frozen=True)
class Deps:
    downloader: Downloader
    compress: Compress
    store: ImageStore
    retry: RetryPolicy
    max_pixels: int
    media_secret: bytes  # keys the object names (storage.object_key)
    claims: SourceClaims = field(default_factory=NoClaims)
    clock: Callable[[], float] = time.time
    max_restarts: int = 3
    compress_timeout: float = 120.0
    auto_threshold: float = DEFAULT_THRESHOLD


async def handle_image_requested(event: ImageRequested, deps: Deps) -> Outcome:
    """Decide what becomes of one event; one broken image fails alone, with a reason."""
    digest = url_digest(event.input_url)
    claim = await _claim(event, digest, deps)
    if isinstance(claim, Settled):
        log.info("image.deduplicated", of_image=str(claim.result.image_id))
        return Publish(as_own_result(claim.result, event.image_id))
    if isinstance(claim, Busy):
        return Wait(claim.retry_in)
    if claim.starts - event.attempt >= deps.max_restarts:
        outcome: Outcome = _crash_loop(event, claim.starts)
    else:
        outcome = await _work(event, deps)
    await _record(event, digest, outcome, deps)
    return outcome


async def _claim(event: ImageRequested, digest: str, deps: Deps) -> Claim:
    try:
        return await deps.claims.claim(event.request_id, digest, event.image_id)
    except CLAIMS_UNAVAILABLE as exc:
        log.warning("claims.unavailable", error=str(exc) or type(exc).__name__)
        return Owned()


async def _record(event: ImageRequested, digest: str, outcome: Outcome, deps: Deps) -> None:
    """Tell the other slots with the same URL what came of it (best effort: they can redo it)."""
    try:
        if isinstance(outcome, Publish):
            await deps.claims.settle(event.request_id, digest, event.image_id, outcome.result)
        elif isinstance(outcome, Requeue):
            wait = max(0.0, outcome.not_before - deps.clock())
            await deps.claims.hold(event.request_id, digest, event.image_id, wait)
    except CLAIMS_UNAVAILABLE as exc:
        log.warning("claims.unavailable", error=str(exc) or type(exc).__name__)


SERVICE = "compressor"


@contextlib.contextmanager
def timed(stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    STAGE_LATENCY.labels(SERVICE, stage).observe(time.perf_counter() - started)


def count_success(event: ImageRequested, input_bytes: int, output_bytes: int) -> None:
    IMAGES_PROCESSED.labels(SERVICE).inc()
    BYTES_IN.labels(SERVICE).inc(input_bytes)
    BYTES_OUT.labels(SERVICE).inc(output_bytes)
    STAGE_LATENCY.labels(SERVICE, "end_to_end").observe((utc_now() - event.occurred_at).total_seconds())


async def _work(event: ImageRequested, deps: Deps) -> Publish | Requeue:
    try:
        with timed("download"):
            data = await deps.downloader.fetch(event.input_url)
        with timed("compress"):
            image = await _compress(deps, data, compression_options(event, deps))
        with timed("store"):
            key = object_key(
                event.request_id, event.input_url, EXTENSIONS[image.format], secret=deps.media_secret
            )
            output_url = await deps.store.save(key, image.data, image.content_type)
    except DownloadError as exc:
        return _after_failure(event, deps, exc.code, exc.message, exc.transient, exc.retry_after)
    except ImageRejected as exc:
        return _after_failure(event, deps, exc.code, exc.message, transient=False)
    except TransientFailure as exc:
        return _after_failure(event, deps, exc.code, exc.message, transient=True)
    except StorageError as exc:
        return _after_failure(event, deps, "storage_error", str(exc), transient=True)
    except Exception as exc:  # a bug must fail one image, not stall its partition and request
        log.exception("image.internal_error")
        return _after_failure(event, deps, "internal_error", f"{type(exc).__name__}: {exc}", transient=False)
    count_success(event, len(data), len(image.data))
    log.info(
        "image.compressed",
        attempt=event.attempt,
        input_bytes=len(data),
        output_bytes=len(image.data),
        kept_original=image.kept_original,
        format=image.format,
        quality=image.quality,
        ssim=image.score,
    )
    return Publish(
        ImageCompressed(
            request_id=event.request_id,
            tenant_id=event.tenant_id,
            image_id=event.image_id,
            output_url=output_url,
            input_bytes=len(data),
            output_bytes=len(image.data),
            width=image.width,
            height=image.height,
            kept_original=image.kept_original,
            format=image.format,
            content_type=image.content_type,
            quality=image.quality,
            ssim=None if image.score is None else round(image.score, 4),
        )
    )


def compression_options(event: ImageRequested, deps: Deps) -> CompressionOptions:
    return CompressionOptions(
        quality=event.quality,
        max_pixels=deps.max_pixels,
        format=event.format,
        optimize=event.optimize,
        progressive=event.progressive,
        auto_threshold=deps.auto_threshold,
    )


async def _compress(deps: Deps, data: bytes, options: CompressionOptions) -> CompressedImage:
    """Bounded in time as well as in pixels: an encode past the limit fails the image.

    With a thread pool the encode itself runs on to its end (threads cannot be stopped; AVIF's
    fixed speed is what bounds it); the image is failed now, not its partition held up.
    """
    try:
        return await asyncio.wait_for(deps.compress(data, options), deps.compress_timeout)
    except TimeoutError as exc:
        limit = f"{deps.compress_timeout:g} s"
        message = f"compressing took longer than {limit} ({options.format}, quality {options.quality})"
        raise ImageRejected("compress_timeout", message) from exc


def _crash_loop(event: ImageRequested, starts: int) -> Publish:
    """An image whose work keeps being cut short fails, rather than take down member after member.

    With Pillow in threads a decoder crash kills the whole member, and the image comes back to
    the next one; the claims count how often it started, so the loop ends here.
    """
    message = f"work on this image started {starts} times without finishing (a crashing decoder?)"
    log.error("image.failed", reason="worker_crashed", message=message, attempt=event.attempt)
    IMAGES_FAILED.labels(SERVICE, "worker_crashed").inc()
    return Publish(
        ImageCompressionFailed(
            request_id=event.request_id,
            tenant_id=event.tenant_id,
            image_id=event.image_id,
            reason_code="worker_crashed",
            message=message,
            attempts=event.attempt,
        )
    )


def _after_failure(
    event: ImageRequested,
    deps: Deps,
    code: str,
    message: str,
    transient: bool,
    retry_after: float | None = None,
) -> Publish | Requeue:
    """Transient and attempts left: the next attempt, later. Otherwise: fail now, with the reason."""
    if deps.retry.may_retry(event.attempt, transient, retry_after):
        delay = deps.retry.delay_before(event.attempt + 1, retry_after)
        log.info("image.retry_scheduled", reason=code, attempt=event.attempt, delay=round(delay, 2))
        next_try = event.model_copy(
            update={"attempt": event.attempt + 1, "event_id": new_event_id(), "occurred_at": utc_now()}
        )
        return Requeue(next_try, deps.clock() + delay, code)
    log.info("image.failed", reason=code, message=message, attempt=event.attempt)
    IMAGES_FAILED.labels(SERVICE, code).inc()
    return Publish(
        ImageCompressionFailed(
            request_id=event.request_id,
            tenant_id=event.tenant_id,
            image_id=event.image_id,
            reason_code=code,
            message=message,
            attempts=event.attempt,
        )
    )
