"""What becomes of one image.requested event, with fakes for the download, store and claims."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass, field

import pytest
from compressor.compression import CompressedImage, CompressionOptions, ImageRejected
from compressor.downloader import DownloadError
from compressor.handlers import Deps, Publish, Requeue, TransientFailure, Wait, handle_image_requested
from compressor.retrying import RetryPolicy
from compressor.sources import Busy, Owned, Settled
from compressor.storage import StorageError, object_key
from pipeline_schemas import ImageCompressed, ImageCompressionFailed, ImageRequested

NOW = 1_000_000.0
POLICY = RetryPolicy(max_attempts=3, base_seconds=0.2, max_seconds=2.0, retry_after_max_seconds=60)


def requested(attempt: int = 1, url: str = "http://img.example/a.jpg") -> ImageRequested:
    return ImageRequested(request_id=uuid.uuid4(), image_id=uuid.uuid4(), input_url=url, attempt=attempt)


@dataclass
class FakeDownloader:
    failures: list[DownloadError] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    async def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if self.failures:
            raise self.failures.pop(0)
        return b"source-bytes"


@dataclass
class FakeStore:
    saved: dict[str, bytes] = field(default_factory=dict)
    broken: bool = False

    async def save(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        if self.broken:
            raise StorageError("store down")
        self.saved[key] = data
        return f"http://media.test/{key}"


@dataclass
class FakeClaims:
    answer: object = field(default_factory=Owned)
    settled: list = field(default_factory=list)
    held: list = field(default_factory=list)

    async def claim(self, request_id, digest, image_id):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def hold(self, request_id, digest, image_id, seconds):
        self.held.append(seconds)

    async def settle(self, request_id, digest, image_id, result):
        self.settled.append(result)

    async def flush(self):
        return None


async def fake_compress(data: bytes, options: CompressionOptions) -> CompressedImage:
    return CompressedImage(b"jpeg:" + data, 40, 30, "PNG", kept_original=False)


MEDIA_SECRET = b"handler-test-media-key-secret-0123456789"


def deps(downloader=None, store=None, claims=None, compress=fake_compress) -> Deps:
    return Deps(
        downloader=downloader or FakeDownloader(),
        compress=compress,
        store=store or FakeStore(),
        retry=POLICY,
        max_pixels=10_000,
        media_secret=MEDIA_SECRET,
        claims=claims or FakeClaims(),
        clock=lambda: NOW,
    )


async def test_success_stores_under_the_deterministic_key_and_settles_the_claim():
    event, store, claims = requested(), FakeStore(), FakeClaims()
    outcome = await handle_image_requested(event, deps(store=store, claims=claims))
    assert isinstance(outcome, Publish)
    result = outcome.result
    assert isinstance(result, ImageCompressed)
    key = object_key(event.request_id, event.input_url, secret=MEDIA_SECRET)
    assert store.saved == {key: b"jpeg:source-bytes"}
    assert result.output_url == f"http://media.test/{key}"
    assert (result.width, result.height, result.image_id) == (40, 30, event.image_id)
    assert claims.settled == [result]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DownloadError("server_error", "503", transient=True), "server_error"),
        (DownloadError("timeout", "slow", transient=True), "timeout"),
        (DownloadError("connection_error", "reset", transient=True), "connection_error"),
    ],
)
async def test_a_transient_failure_is_requeued_as_the_next_attempt_for_later(error, code):
    event, claims = requested(), FakeClaims()
    outcome = await handle_image_requested(event, deps(FakeDownloader([error]), claims=claims))
    assert isinstance(outcome, Requeue)
    assert outcome.reason == code
    assert outcome.event.attempt == 2
    assert outcome.event.image_id == event.image_id
    assert outcome.event.event_id != event.event_id
    assert NOW + 0.1 <= outcome.not_before <= NOW + 0.2
    assert claims.held
    assert not claims.settled


async def test_429_waits_as_long_as_retry_after_says():
    error = DownloadError("rate_limited", "429", transient=True, retry_after=17.0)
    outcome = await handle_image_requested(requested(), deps(FakeDownloader([error])))
    assert isinstance(outcome, Requeue)
    assert outcome.not_before == NOW + 17.0


async def test_a_retry_after_beyond_what_we_hold_fails_the_image_now():
    error = DownloadError("rate_limited", "429", transient=True, retry_after=3600.0)
    outcome = await handle_image_requested(requested(), deps(FakeDownloader([error])))
    assert isinstance(outcome.result, ImageCompressionFailed)
    assert outcome.result.reason_code == "rate_limited"


async def test_the_last_attempt_fails_with_the_reason_and_the_attempt_count():
    error = DownloadError("timeout", "too slow", transient=True)
    outcome = await handle_image_requested(requested(attempt=3), deps(FakeDownloader([error])))
    assert isinstance(outcome, Publish)
    failed = outcome.result
    assert isinstance(failed, ImageCompressionFailed)
    assert (failed.reason_code, failed.message, failed.attempts) == ("timeout", "too slow", 3)


@pytest.mark.parametrize(
    "error",
    [
        DownloadError("http_error", "404", transient=False),
        DownloadError("address_refused", "10.0.0.1 is private", transient=False),
        DownloadError("too_large", "big", transient=False),
    ],
)
async def test_a_permanent_download_failure_fails_at_once(error):
    downloader = FakeDownloader([error])
    outcome = await handle_image_requested(requested(), deps(downloader))
    assert isinstance(outcome.result, ImageCompressionFailed)
    assert outcome.result.reason_code == error.code
    assert outcome.result.attempts == 1
    assert len(downloader.fetched) == 1


async def test_an_image_pillow_rejects_fails_at_once():
    async def reject(data, options):
        raise ImageRejected("decompression_bomb", "too many pixels")

    outcome = await handle_image_requested(requested(), deps(compress=reject))
    assert outcome.result.reason_code == "decompression_bomb"


async def test_a_crashed_pool_worker_and_a_store_outage_are_retried():
    async def crash(data, options):
        raise TransientFailure("worker_crashed", "died")

    crashed = await handle_image_requested(requested(), deps(compress=crash))
    assert isinstance(crashed, Requeue)
    assert crashed.reason == "worker_crashed"
    stored = await handle_image_requested(requested(), deps(store=FakeStore(broken=True)))
    assert isinstance(stored, Requeue)
    assert stored.reason == "storage_error"


async def test_an_unexpected_error_fails_only_this_image():
    async def bug(data, options):
        raise KeyError("oops")

    outcome = await handle_image_requested(requested(), deps(compress=bug))
    assert outcome.result.reason_code == "internal_error"


async def test_a_url_another_slot_settled_is_reported_without_download():
    first = requested()
    done = ImageCompressed(
        request_id=first.request_id,
        image_id=first.image_id,
        output_url="http://media.test/x.jpg",
        input_bytes=10,
        output_bytes=5,
        width=4,
        height=3,
    )
    copy = requested(url=first.input_url)
    downloader = FakeDownloader()
    outcome = await handle_image_requested(copy, deps(downloader, claims=FakeClaims(Settled(done))))
    assert isinstance(outcome, Publish)
    assert outcome.result.image_id == copy.image_id
    assert outcome.result.output_url == done.output_url
    assert outcome.result.event_id != done.event_id
    assert downloader.fetched == []


async def test_a_url_another_slot_is_working_on_is_looked_at_again_later():
    downloader = FakeDownloader()
    outcome = await handle_image_requested(requested(), deps(downloader, claims=FakeClaims(Busy(0.5))))
    assert outcome == Wait(0.5)
    assert downloader.fetched == []


async def test_without_the_claims_database_the_image_is_still_processed():
    claims = FakeClaims(answer=OSError("connection refused"))
    outcome = await handle_image_requested(requested(), deps(claims=claims))
    assert isinstance(outcome.result, ImageCompressed)


async def test_an_image_that_keeps_cutting_its_work_short_fails_instead_of_crashing_member_after_member():
    downloader = FakeDownloader()
    claims = FakeClaims(Owned(starts=4))
    outcome = await handle_image_requested(requested(attempt=1), deps(downloader, claims=claims))
    assert outcome.result.reason_code == "worker_crashed"
    assert downloader.fetched == []
    assert claims.settled == [outcome.result]


async def test_restarts_within_the_limit_and_retries_are_not_crashes():
    outcome = await handle_image_requested(requested(attempt=3), deps(claims=FakeClaims(Owned(starts=5))))
    assert isinstance(outcome.result, ImageCompressed)


@dataclass
class TypedStore:
    saved: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    async def save(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        self.saved[key] = (data, content_type)
        return f"http://media.test/{key}"


async def test_a_webp_auto_request_is_compressed_as_asked_and_stored_as_webp():
    event = requested().model_copy(update={"format": "webp", "quality": "auto", "optimize": True})
    seen: list[CompressionOptions] = []

    async def as_webp(data: bytes, options: CompressionOptions) -> CompressedImage:
        seen.append(options)
        return CompressedImage(b"RIFF-webp", 40, 30, "JPEG", False, "webp", quality=65, score=0.91234)

    store = TypedStore()
    outcome = await handle_image_requested(event, deps(store=store, compress=as_webp))
    assert isinstance(outcome, Publish)
    assert isinstance(outcome.result, ImageCompressed)
    assert (seen[0].format, seen[0].quality, seen[0].optimize) == ("webp", "auto", True)
    key = object_key(event.request_id, event.input_url, "webp", secret=MEDIA_SECRET)
    assert store.saved == {key: (b"RIFF-webp", "image/webp")}
    result = outcome.result
    assert (result.format, result.content_type, result.quality, result.ssim) == (
        "webp",
        "image/webp",
        65,
        0.9123,
    )
    assert result.output_url.endswith(".webp")


async def test_a_kept_original_is_stored_under_its_own_extension_and_type():
    event = requested().model_copy(update={"format": "avif"})

    async def kept(data: bytes, options: CompressionOptions) -> CompressedImage:
        return CompressedImage(data, 40, 30, "JPEG", True, "jpeg")

    store = TypedStore()
    outcome = await handle_image_requested(event, deps(store=store, compress=kept))
    assert isinstance(outcome, Publish)
    assert isinstance(outcome.result, ImageCompressed)
    assert list(store.saved) == [object_key(event.request_id, event.input_url, "jpg", secret=MEDIA_SECRET)]
    assert (outcome.result.format, outcome.result.content_type, outcome.result.quality) == (
        "jpeg",
        "image/jpeg",
        None,
    )


async def test_a_compression_past_its_time_limit_fails_the_image_compress_timeout():
    async def never(data: bytes, options: CompressionOptions) -> CompressedImage:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    slow = dataclasses.replace(deps(compress=never), compress_timeout=0.01)
    outcome = await handle_image_requested(requested(), slow)
    assert isinstance(outcome, Publish)
    assert isinstance(outcome.result, ImageCompressionFailed)
    assert outcome.result.reason_code == "compress_timeout"
