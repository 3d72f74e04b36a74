"""The compressor end to end: the issue's corpus of real and hostile images, and a member killed mid-request.

The members run with short limits here (timeouts, attempts, size) and an allowlist of 127.0.0.1/32
only, so that a redirect to 127.0.0.2 stands for a private address. The pipeline's own settings
are restored after the module.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web
from compressor.storage import object_key
from PIL import Image

from tests.integration.compressor.stack import image_rows, members_with, request_row, wait_for_group
from tests.support import images
from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.jpeg_quality import estimate_jpeg_quality
from tests.support.servers import LocalServer, serving, wait_until

pytestmark = pytest.mark.e2e

MAX_BYTES = 1_000_000
ATTEMPTS = 3
HARDENED = {
    "FETCH_ALLOWLIST": "127.0.0.1/32",
    "COMPRESSOR_CONNECT_TIMEOUT": "1",
    "COMPRESSOR_TOTAL_TIMEOUT": "1.5",
    "COMPRESSOR_MAX_ATTEMPTS": str(ATTEMPTS),
    "COMPRESSOR_RETRY_BASE_SECONDS": "0.2",
    "COMPRESSOR_RETRY_MAX_SECONDS": "1",
    "COMPRESSOR_MAX_DOWNLOAD_BYTES": str(MAX_BYTES),
    "COMPRESSOR_MAX_IN_FLIGHT": "8",
    "COMPRESSOR_SESSION_TIMEOUT_MS": "6000",
}
RED_THRESHOLD = 60  # distance from pure red that still counts as the red corner block
W, H = images.ORIENTATION_SIZE


@pytest.fixture(scope="module")
def hardened(pipeline):
    with members_with(pipeline, HARDENED):
        yield pipeline


# --- the corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """`reason` None: done, with `size` as displayed; otherwise failed with that reason code."""

    reason: str | None = None
    size: tuple[int, int] | None = None
    look: Callable[[Image.Image], bool] | None = None


def red_at(x: int, y: int) -> Callable[[Image.Image], bool]:
    def check(image: Image.Image) -> bool:
        r, g, b = image.convert("RGB").getpixel((x, y))
        return abs(r - images.RED[0]) + abs(g - images.RED[1]) + abs(b - images.RED[2]) < RED_THRESHOLD

    return check


bw, bh = images.CORNER_BLOCK
GOOD: dict[str, tuple[Callable[[], bytes], Expect]] = {
    "rgba.png": (images.rgba_png_with_transparency, Expect(size=(64, 48))),
    "palette.png": (images.palette_png_with_transparency, Expect(size=(64, 48))),
    "cmyk.jpg": (images.cmyk_jpeg, Expect(size=(64, 48))),
    "exif6.jpg": (lambda: images.oriented_jpeg(6), Expect(size=(H, W), look=red_at(H - bh // 2, bw // 2))),
    "exif8.jpg": (lambda: images.oriented_jpeg(8), Expect(size=(H, W), look=red_at(bh // 2, W - bw // 2))),
    "gray16.png": (images.gray16_png, Expect(size=(256, 8))),
    "gray.png": (images.gray8_png, Expect(size=(64, 48))),
    "anim.gif": (images.animated_gif, Expect(size=(32, 32), look=red_at(16, 16))),
    "photo.webp": (images.webp, Expect(size=(96, 64))),
    "q30.jpg": (images.jpeg_at_quality_30, Expect(size=(320, 240))),
    "photo.jpg": (lambda: images.photo_jpeg(800, 600, seed=11), Expect(size=(800, 600))),
}
BAD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated.jpg": (images.truncated_jpeg, "truncated_image"),
    "bomb.png": (images.decompression_bomb_png, "decompression_bomb"),
}
HOSTILE: dict[str, str] = {
    "html.jpg": "not_an_image",
    "oversized.jpg": "too_large",
    "oversized-stream.jpg": "too_large",
    "slow.jpg": "timeout",
    "redirect.jpg": "address_refused",
    "missing.jpg": "http_error",
}
RECOVERING = {"flaky.jpg": (800, 600), "ratelimited.jpg": (640, 480)}
DUPLICATE = "dup.jpg"


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def next(self) -> int:
        self.calls += 1
        return self.calls


def hostile_routes(refused: LocalServer) -> dict:
    flaky, limited = Counter(), Counter()

    async def html(_request: web.Request) -> web.Response:
        return web.Response(body=images.html_bytes(), content_type="image/jpeg")

    async def oversized(_request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xd8\xff" + os.urandom(MAX_BYTES + 1000), content_type="image/jpeg")

    async def oversized_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(MAX_BYTES // 65536 + 4):
            await resp.write(os.urandom(65536))
        await resp.write_eof()
        return resp

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(4)
        return web.Response(body=images.photo_jpeg(64, 48), content_type="image/jpeg")

    async def flaky_then_ok(_request: web.Request) -> web.Response:
        if flaky.next() <= 2:
            return web.Response(status=503)
        return web.Response(body=images.photo_jpeg(800, 600, seed=3), content_type="image/jpeg")

    async def rate_limited(_request: web.Request) -> web.Response:
        if limited.next() == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(body=images.photo_jpeg(640, 480, seed=4), content_type="image/jpeg")

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound(refused.url("secret.jpg"))

    return {
        "html.jpg": html,
        "oversized.jpg": oversized,
        "oversized-stream.jpg": oversized_stream,
        "slow.jpg": slow,
        "flaky.jpg": flaky_then_ok,
        "ratelimited.jpg": rate_limited,
        "redirect.jpg": redirect,
    }


@pytest.fixture(scope="module")
async def refused_host():
    """A server on 127.0.0.2, outside the allowlist: nothing may ever reach it."""
    async with serving({"secret.jpg": images.photo_jpeg(64, 48)}, host="127.0.0.2") as server:
        yield server


@pytest.fixture(scope="module")
async def corpus_host(refused_host):
    files = {name: make() for name, (make, _) in {**GOOD, **BAD_FILES}.items()}
    files[DUPLICATE] = images.photo_jpeg(320, 240, seed=9)
    async with serving(files, hostile_routes(refused_host)) as server:
        yield server


@dataclass(frozen=True)
class Finished:
    request_id: str
    status: dict
    rows: list  # asyncpg records, in file order

    def by_name(self) -> dict:
        return {row["input_url"].rsplit("/", 1)[1]: row for row in self.rows}


CORPUS = [*GOOD, *BAD_FILES, *HOSTILE, *RECOVERING, DUPLICATE, DUPLICATE, DUPLICATE]


@pytest.fixture(scope="module")
async def corpus_request(hardened, corpus_host, database_url) -> Finished:
    """The whole corpus in one uploaded request, processed to its end."""
    rows = [
        (n + 1, f"Product {n + 1}", [corpus_host.url(name) for name in CORPUS[n * 3 : n * 3 + 3]])
        for n in range((len(CORPUS) + 2) // 3)
    ]
    ingest_url = f"http://127.0.0.1:{hardened.ingest_port}"
    key = bearer(hardened.api_key())
    accepted = await upload_csv(ingest_url, csv_of(rows), headers=key)
    status = await wait_for_completion(accepted["status_url"], timeout=120, headers=key)
    return Finished(accepted["request_id"], status, await image_rows(database_url, accepted["request_id"]))


async def test_one_bad_image_fails_alone_and_the_request_completes_with_errors(corpus_request, database_url):
    failures = len(BAD_FILES) + len(HOSTILE)
    request = await request_row(database_url, corpus_request.request_id)
    assert request["status"] == corpus_request.status["status"] == "completed_with_errors"
    assert request["total_images"] == len(CORPUS)
    assert (request["processed_images"], request["failed_images"]) == (len(CORPUS) - failures, failures)
    assert request["completed_at"] is not None


async def test_each_failure_is_stored_with_its_reason_code_and_a_message(corpus_request):
    rows = corpus_request.by_name()
    expected = {**{name: code for name, (_, code) in BAD_FILES.items()}, **HOSTILE}
    for name, code in expected.items():
        row = rows[name]
        assert (row["status"], row["error_code"]) == ("failed", code), name
        assert row["error_message"], name
    assert rows["html.jpg"]["attempts"] == 1  # permanent failures are not retried
    assert rows["slow.jpg"]["attempts"] == ATTEMPTS


async def test_successful_outputs_decode_keep_size_and_orientation_at_the_requested_quality(
    corpus_request, corpus_host
):
    rows = corpus_request.by_name()
    async with httpx.AsyncClient(timeout=30) as client:
        for name, (_, expect) in GOOD.items():
            await check_output(client, rows[name], corpus_host.files[name], expect, name)
        for name, size in RECOVERING.items():
            await check_output(client, rows[name], None, Expect(size=size), name)
    assert rows["q30.jpg"]["kept_original"] is True  # never worse than the input
    assert not any(rows[name]["kept_original"] for name in GOOD if name != "q30.jpg")


async def check_output(
    client: httpx.AsyncClient, row, source: bytes | None, expect: Expect, name: str
) -> None:
    assert row["status"] == "done", (name, row["error_code"], row["error_message"])
    output = (await client.get(row["output_url"])).content
    image = Image.open(io.BytesIO(output))
    image.load()
    assert image.format == "JPEG", name
    assert image.size == expect.size == (row["width"], row["height"]), name
    if row["kept_original"]:
        assert output == source, name
    else:
        assert abs(estimate_jpeg_quality(output) - 50) <= 2, name
    if expect.look is not None:
        assert expect.look(image), f"{name} is not displayed the way its source is"


async def test_transient_failures_are_retried_and_retry_after_is_honoured(corpus_request, corpus_host):
    assert len(corpus_host.hits("slow.jpg")) == ATTEMPTS
    assert len(corpus_host.hits("flaky.jpg")) == 3  # 503, 503, 200
    hits = corpus_host.hits("ratelimited.jpg")
    assert len(hits) == 2
    assert hits[1].received_at - hits[0].received_at >= 1.0  # Retry-After: 1, never sooner


async def test_a_redirect_to_an_address_outside_the_allowlist_is_never_followed(corpus_request, refused_host):
    assert corpus_request.by_name()["redirect.jpg"]["error_code"] == "address_refused"
    assert refused_host.received == []


async def test_a_url_repeated_within_a_request_is_downloaded_and_compressed_once(
    corpus_request, corpus_host, pipeline
):
    copies = [row for row in corpus_request.rows if row["input_url"].endswith("/" + DUPLICATE)]
    assert len(copies) == 3
    assert len(corpus_host.hits(DUPLICATE)) == 1
    assert {row["status"] for row in copies} == {"done"}
    assert len({row["output_url"] for row in copies}) == 1
    assert copies[0]["output_url"].endswith(
        object_key(
            uuid.UUID(corpus_request.request_id),
            copies[0]["input_url"],
            secret=pipeline.media_key_secret().encode(),
        )
    )


# --- kill -9 -----------------------------------------------------------------------------

FAULT_IMAGES = 200
SERVE_DELAY = 0.2  # seconds per image, so that the request is still in flight when the member dies


@pytest.fixture
async def slow_host():

    async def photo(request: web.Request) -> web.Response:
        await asyncio.sleep(SERVE_DELAY)
        seed = int(request.match_info["tail"].removeprefix("p/").removesuffix(".jpg"))
        return web.Response(body=images.photo_jpeg(48, 32, seed=seed), content_type="image/jpeg")

    async with serving(routes={f"p/{n}.jpg": photo for n in range(FAULT_IMAGES)}) as server:
        yield server


async def test_a_member_killed_mid_request_loses_nothing_and_duplicates_nothing(
    hardened, slow_host, database_url
):
    from devstack import procs, services

    urls = [slow_host.url(f"p/{n}.jpg") for n in range(FAULT_IMAGES)]
    rows = [(r + 1, f"Product {r + 1}", urls[r * 4 : r * 4 + 4]) for r in range(FAULT_IMAGES // 4)]
    key = bearer(hardened.api_key())
    accepted = await upload_csv(f"http://127.0.0.1:{hardened.ingest_port}", csv_of(rows), headers=key)

    async def well_under_way() -> bool:
        return len(slow_host.received) >= 40

    assert await wait_until(well_under_way, timeout=60, interval=0.05)
    assert procs.kill_hard(hardened.run_dir, "compressor-1")
    before = await request_row(database_url, accepted["request_id"])
    assert before["completed_at"] is None, "the request finished before the member was killed"

    try:
        status = await wait_for_completion(accepted["status_url"], timeout=120, headers=key)
    finally:
        services.start_one(hardened, "compressor-1", HARDENED)
    assert (status["status"], status["processed_images"], status["failed_images"]) == (
        "completed",
        FAULT_IMAGES,
        0,
    )
    stored = await image_rows(database_url, accepted["request_id"])
    assert len(stored) == FAULT_IMAGES
    assert {row["status"] for row in stored} == {"done"}
    request_id = uuid.UUID(accepted["request_id"])
    secret = hardened.media_key_secret().encode()
    assert all(
        row["output_url"].endswith(object_key(request_id, row["input_url"], secret=secret)) for row in stored
    )
    counted = await request_row(database_url, accepted["request_id"])
    assert (counted["processed_images"], counted["failed_images"]) == (FAULT_IMAGES, 0)
    await asyncio.to_thread(wait_for_group, hardened.bootstrap_servers, 2)
