"""Output formats on the running pipeline: an upload asking for WebP at quality=auto (issue 16).

The whole way: ingest's form fields, the image.requested event, the compressor's encode and
store (extension and Content-Type), the tracker's record, the images list and the output CSV.
"""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from compressor import auto_quality
from PIL import Image

from tests.support import images
from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.servers import LocalServer

pytestmark = pytest.mark.e2e

AUTO_THRESHOLD = auto_quality.DEFAULT_THRESHOLD  # COMPRESSOR_AUTO_SSIM_THRESHOLD's default
LADDER = auto_quality.LADDER


@pytest.fixture
async def image_host():
    server = LocalServer()
    server.files["photo.jpg"] = images.photo_jpeg(800, 600, seed=21)
    server.files["cutout.png"] = images.product_cutout_png(640, 640, seed=22)
    await server.start()
    yield server
    await server.stop()


async def test_webp_at_quality_auto_is_stored_served_and_reported_as_webp(
    pipeline, ingest_url, tracker_url, image_host, auth_headers
):
    products = csv_of([(1, "Shoe", [image_host.url("photo.jpg"), image_host.url("cutout.png")])])
    accepted = await upload_csv(ingest_url, products, headers=auth_headers, format="webp", quality="auto")
    status = await wait_for_completion(accepted["status_url"], headers=auth_headers)
    assert status["failed_images"] == 0

    async with httpx.AsyncClient(timeout=30, headers=auth_headers) as http:
        page = (await http.get(f"{tracker_url}/requests/{accepted['request_id']}/images")).json()
        items = {item["input_url"].rsplit("/", 1)[1]: item for item in page["items"]}
        assert set(items) == {"photo.jpg", "cutout.png"}
        for name, item in items.items():
            assert item["status"] == "done", name
            assert item["format"] == "webp", name
            assert item["quality"] in LADDER, name
            assert item["ssim"] >= AUTO_THRESHOLD, name
            assert item["output_url"].endswith(".webp"), name
            served = await http.get(item["output_url"])
            assert served.status_code == 200
            assert served.headers["content-type"] == "image/webp"
            picture = Image.open(io.BytesIO(served.content))
            picture.load()
            assert picture.format == "WEBP"
            assert picture.size == (item["width"], item["height"])
        cutout = Image.open(io.BytesIO((await http.get(items["cutout.png"]["output_url"])).content))
        assert cutout.mode == "RGBA"
        assert cutout.getpixel((2, 2))[3] == 0  # the corner outside the cut-out stays transparent
        output = await http.get(f"{tracker_url}/requests/{accepted['request_id']}/output.csv")
    rows = list(csv.DictReader(io.StringIO(output.text, newline="")))
    assert [row["Output Image Formats"] for row in rows] == ["webp,webp"]


async def test_a_format_ingest_does_not_know_is_refused_with_the_field_named(
    ingest_url, auth_headers, image_host
):
    csv = csv_of([(1, "Shoe", [image_host.url("photo.jpg")])])
    problem = await upload_csv(ingest_url, csv, expect=422, headers=auth_headers, format="gif")
    assert [error["column"] for error in problem["errors"]] == ["format"]
    problem = await upload_csv(ingest_url, csv, expect=422, headers=auth_headers, quality="best")
    assert [error["column"] for error in problem["errors"]] == ["quality"]
    problem = await upload_csv(
        ingest_url, csv, expect=422, headers=auth_headers, format="avif", progressive="true"
    )
    assert [error["column"] for error in problem["errors"]] == ["format"]
