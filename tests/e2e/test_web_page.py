"""The web page in a real browser: Debian's chromium, driven by Playwright, against the whole stack.

Playwright comes from PyPI, but its own browser download is never used (it fails offline): the
test points it at /usr/bin/chromium, installed from Debian's packages when it is missing. Every
address the browser reaches is on 127.0.0.1: ingest (the page and what it reads through ingest)
and the local image host.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from tests.support.api import csv_of
from tests.support.images import photo_jpeg
from tests.support.servers import LocalServer, held, serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SCREENSHOT = ARTIFACTS / "web-page.png"
FINISH_MS = 120_000  # the whole request, from upload to 100 %
STEP_MS = 30_000  # any other wait of the browser
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HELD_SECONDS = 30.0  # the held image is released by the test, or after this at the latest


def ensure_chromium() -> Path:
    """Debian's chromium, installed the way devstack installs what it needs when it is missing."""
    if not CHROMIUM.exists():
        from devstack.system import apt_install

        apt_install("chromium")
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing after installing the chromium package"
    return CHROMIUM


@dataclass
class Browser:
    """A page, and what the browser reported while the test ran."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def called(self, pattern: str) -> list[dict[str, str]]:
        return [headers for url, headers in self.requests if re.search(pattern, url)]


@pytest.fixture(scope="module")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture
async def browser(chromium, tmp_path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every test
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
            timeout=60_000,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(STEP_MS)
            seen = Browser(page, context)
            page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    seen.errors.append(f"console: {message.text}") if message.type == "error" else None
                ),
            )
            page.on("request", lambda request: seen.requests.append((request.url, request.headers)))
            yield seen
        finally:
            await context.close()


@pytest.fixture
async def image_host() -> AsyncIterator[LocalServer]:
    files = {
        f"photo-{n}.jpg": photo_jpeg(width, height, seed=40 + n)
        for n, (width, height) in enumerate([(640, 480), (480, 480), (360, 480)])
    }
    files["broken.jpg"] = b"these bytes are not a picture of anything"
    async with serving(files) as server:
        server.routes["held.jpg"] = held(files["photo-1.jpg"], server.release, at_most=HELD_SECONDS)
        yield server


async def open_page_with_key(browser: Browser, ingest_url: str, api_key: str) -> Page:
    page = browser.page
    await page.goto(f"{ingest_url}/", wait_until="load")
    await expect(page).to_have_title(re.compile("imgpipe"))
    await page.fill("#api-key", api_key)
    await page.click("#key-form button[type=submit]")
    await expect(page.locator("#key-state")).to_have_text("key set for this tab")
    return page


async def choose_csv(page: Page, content: bytes) -> None:
    await page.set_input_files(
        "#file", files=[{"name": "products.csv", "mimeType": "text/csv", "buffer": content}]
    )
    await expect(page.locator("#file-name")).to_contain_text("products.csv")
    await page.click("#upload-button")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    return struct.unpack(">II", data[16:24])


async def test_upload_watch_progress_browse_before_and_after_and_download(
    browser, image_host, ingest_url, api_key
):
    products = csv_of(
        [
            (1, "Linen Shirt", [image_host.url("photo-0.jpg"), image_host.url("photo-1.jpg")]),
            (2, "Stoneware Mug", [image_host.url("photo-2.jpg")]),
            (3, "Desk Lamp", [image_host.url("broken.jpg")]),
            (4, "Wool Scarf", [image_host.url("held.jpg")]),
        ]
    )
    page = await open_page_with_key(browser, ingest_url, api_key)

    await choose_csv(page, products)

    await expect(page.locator("#upload-message")).to_contain_text("4 product(s), 5 image(s)")
    # Live: while one image is held by its host, the page shows the four others finished.
    await expect(page.locator("#progress-percent")).to_have_text("80%", timeout=FINISH_MS)
    await expect(page.locator("#progress-text")).to_have_text("3 of 5 done · 1 failed · 1 to go")
    await expect(page.locator("#status-badge")).to_have_text("processing")
    await expect(page.locator("#results-section")).to_be_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-page-progress.png"))
    image_host.release.set()
    await expect(page.locator("#progress-percent")).to_have_text("100%", timeout=FINISH_MS)
    await expect(page.locator("#progress-text")).to_have_text("4 of 5 done · 1 failed")
    await expect(page.locator("#status-badge")).to_have_text("completed with errors")
    assert await page.locator("#bar").get_attribute("value") == "100"

    # The gallery: every image, before and after side by side; the after pictures are real images.
    cards = page.locator("#gallery .card")
    await expect(cards).to_have_count(5)
    await expect(page.locator("#gallery .card.done")).to_have_count(4)
    await page.wait_for_function(
        """() => {
            const shots = [...document.querySelectorAll('#gallery .card.done img.before, #gallery .card.done img.after')];
            return shots.length === 8 && shots.every((img) => img.complete && img.naturalWidth > 0);
        }""",
        timeout=STEP_MS,
    )
    after_sources = await page.eval_on_selector_all("#gallery img.after", "imgs => imgs.map(i => i.src)")
    assert all(src.startswith("data:image/jpeg;base64,") for src in after_sources)
    before_sources = await page.eval_on_selector_all("#gallery img.before", "imgs => imgs.map(i => i.src)")
    assert sorted(before_sources) == sorted(
        [*(image_host.url(f"photo-{n}.jpg") for n in range(3)), image_host.url("held.jpg")]
    )
    for savings in await page.locator("#gallery .card.done .bytes").all_inner_texts():
        assert re.search(r"kB → [\d.]+ kB\s*−\d+%", savings), savings
        assert re.search(r"saved [\d.]+ kB · [\d.]+:1", savings), savings

    # The failure, with its reason, on its card and in the failures table.
    failed = page.locator("#gallery .card.failed")
    await expect(failed).to_have_count(1)
    await expect(failed).to_contain_text("#3 Desk Lamp")
    await expect(failed.locator(".reason code")).to_have_text("not_an_image")
    await expect(page.locator("#failures tbody tr")).to_have_count(1)
    await expect(page.locator("#failures tbody tr")).to_contain_text("broken.jpg")
    await expect(page.locator("#failures tbody tr")).to_contain_text("not_an_image")
    await expect(page.locator("#summary")).to_contain_text("Compressed4")

    # The output CSV, fetched with the key and saved by the browser.
    async with page.expect_download(timeout=STEP_MS) as download_info:
        await page.click("#download")
    download = await download_info.value
    saved = await asyncio.to_thread(Path(await download.path()).read_text)
    rows = list(csv.reader(io.StringIO(saved)))
    assert rows[0] == [
        "S. No.",
        "Product Name",
        "Input Image Urls",
        "Output Image Urls",
        "Output Image Formats",
    ]
    assert [r[:2] for r in rows[1:]] == [
        ["1", "Linen Shirt"],
        ["2", "Stoneware Mug"],
        ["3", "Desk Lamp"],
        ["4", "Wool Scarf"],
    ]
    assert rows[3][3] == ""  # the failed image has no output

    # Everything went to ingest with the key: the upload, the stream, the pages, the pictures.
    for pattern in (
        r"/upload$",
        r"/requests/[^/]+/events$",
        r"/requests/[^/]+/images\?",
        r"/media/",
        r"output\.csv$",
    ):
        sent = browser.called(pattern)
        assert sent, f"no request matching {pattern}"
        assert all(h.get("authorization") == f"Bearer {api_key}" for h in sent), pattern
        assert all(url.startswith(ingest_url) for url, _ in browser.requests if re.search(pattern, url))
    assert browser.called(r"/status/") == []  # progress came from the stream, not from polling
    assert browser.errors == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    data = SCREENSHOT.read_bytes()
    width, height = png_size(data)
    assert width >= 1200
    assert height >= 900
    assert len(data) > 50_000, "the screenshot is suspiciously small (a blank page?)"


async def test_a_csv_with_bad_rows_shows_each_problem_by_row_and_column(browser, ingest_url, api_key):
    bad = (
        b"S. No.,Product Name,Input Image Urls\n"
        b"1,Red Shirt,ftp://files.example/a.jpg\n"
        b"1,Blue Mug,https://cdn.example/mug.jpg\n"
        b"x,Green Hat,https://cdn.example/hat.jpg\n"
    )
    page = await open_page_with_key(browser, ingest_url, api_key)

    await choose_csv(page, bad)

    errors = page.locator("#errors")
    await expect(errors).to_be_visible()
    await expect(page.locator("#upload-message")).to_contain_text("Invalid CSV")
    table_rows = page.locator("#errors tbody tr")
    await expect(table_rows).to_have_count(3)
    cells = [
        [c.strip() for c in (await row.locator("td").all_inner_texts())] for row in await table_rows.all()
    ]
    assert [(row, column) for row, column, _ in cells] == [
        ("2", "Input Image Urls"),
        ("3", "S. No."),
        ("4", "S. No."),
    ]
    assert "http or https" in cells[0][2]
    assert "duplicate" in cells[1][2]
    await expect(page.locator("#progress-section")).to_be_hidden()
    assert browser.errors == [] or all("422" in e for e in browser.errors)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-page-errors.png"), full_page=True)
