"""The web page shows queued images and cancels a request (Debian's chromium, as test_web_page)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import expect

from tests.e2e.test_fairness import catalogue, image_host  # noqa: F401 - fixture
from tests.e2e.test_web_page import browser, chromium, open_page_with_key  # noqa: F401 - fixtures
from tests.support.api import bearer, upload_csv, wait_for_completion

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_the_page_shows_queued_images_and_its_cancel_button_cancels(
    browser,  # noqa: F811
    image_host,  # noqa: F811
    ingest_url,
    api_key,
):
    accepted = await upload_csv(
        ingest_url, catalogue(image_host, 600, f"web{uuid.uuid4().hex[:4]}"), headers=bearer(api_key)
    )
    page = await open_page_with_key(browser, ingest_url, api_key)
    await page.goto(f"{ingest_url}/#{accepted['request_id']}")

    await expect(page.locator("#progress-text")).to_contain_text("queued (fair share)", timeout=30_000)
    await expect(page.locator("#progress-text")).to_contain_text("in progress")
    # The server's fair-share ETA, once a few of the request's images finished.
    await expect(page.locator("#progress-eta")).to_contain_text(
        re.compile(r"about \d+ (s|min \d\d s) left"), timeout=30_000
    )
    await page.click("#cancel")
    await expect(page.locator("#status-badge")).to_have_text("cancelled", timeout=60_000)

    final = await wait_for_completion(accepted["status_url"], timeout=60, headers=bearer(api_key))
    assert final["status"] == "cancelled"
    assert final["cancelled_images"] > 0
    await expect(page.locator("#progress-text")).to_contain_text(f"{final['cancelled_images']} cancelled")
    await expect(page.locator("#cancel")).to_be_hidden()
    assert browser.errors == []
