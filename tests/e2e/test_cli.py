"""The installed `imgpipe` command, run as a subprocess against every service of the real stack."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.support.api import csv_of
from tests.support.images import photo_jpeg
from tests.support.servers import LocalServer, serving

pytestmark = pytest.mark.e2e

SIZES = [(320, 240), (400, 400), (240, 320)]
COMMAND_TIMEOUT = 240
IMGPIPE = Path(sys.executable).with_name("imgpipe")


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
async def image_host():
    pictures = {
        f"img/{n}.jpg": photo_jpeg(*SIZES[n % len(SIZES)], quality=92, seed=100 + n) for n in range(6)
    }
    async with serving(pictures) as server:
        yield server


@pytest.fixture
def cli_env(pipeline, ingest_url, tracker_url) -> dict[str, str]:
    """URLs and the stack's bootstrap API key, given the way a user would: in the environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("IMGPIPE_")}
    return {
        **env,
        "IMGPIPE_INGEST_URL": ingest_url,
        "IMGPIPE_API_URL": tracker_url,
        "IMGPIPE_API_KEY": pipeline.api_key(),
        "COLUMNS": "200",
    }


async def imgpipe(env: dict[str, str], *args: object) -> Run:
    """Run the console script without blocking the event loop that serves the test images."""
    process = await asyncio.create_subprocess_exec(
        IMGPIPE, *map(str, args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return Run(process.returncode, stdout.decode(), stderr.decode())


async def submit_and_wait(env: dict[str, str], products: Path) -> Run:
    """`imgpipe submit --wait --json`, polling every half second for at most three minutes."""
    return await imgpipe(env, "submit", products, "--wait", "--interval", "0.5", "--timeout", "180", "--json")


def write_products(path: Path, host: LocalServer, names: list[list[str]]) -> Path:
    rows = [
        (serial, f"Product {serial}", [host.url(f"img/{n}") for n in row])
        for serial, row in enumerate(names, 1)
    ]
    path.write_bytes(csv_of(rows))
    return path


async def test_submit_wait_completes_then_download_saves_the_csv_and_every_image(
    image_host, cli_env, tmp_path
):
    products = write_products(tmp_path / "products.csv", image_host, [["0.jpg", "1.jpg", "2.jpg"], ["3.jpg", "4.jpg", "5.jpg"]])  # fmt: skip

    submitted = await submit_and_wait(cli_env, products)

    assert submitted.exit_code == 0, submitted.stderr + submitted.stdout
    document = submitted.json()
    assert document["status"]["status"] == "completed"
    summary = document["summary"]
    assert (summary["images"], summary["done"], summary["failed"]) == (6, 6, 0)
    assert summary["input_bytes"] == sum(len(image_host.files[f"img/{n}.jpg"]) for n in range(6))
    assert 0 < summary["output_bytes"] < summary["input_bytes"]
    assert "progress: " in submitted.stderr

    request_id = document["accepted"]["request_id"]
    out_csv, images_dir = tmp_path / "output.csv", tmp_path / "images"
    downloaded = await imgpipe(
        cli_env, "download", request_id, "-o", out_csv, "--images", images_dir, "--json"
    )

    assert downloaded.exit_code == 0, downloaded.stderr + downloaded.stdout
    assert downloaded.json()["images"]["saved"] == 6
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [row["S. No."] for row in rows] == ["1", "2"]
    assert all(len(row["Output Image Urls"].split(",")) == 3 for row in rows)
    for serial in (1, 2):
        for position_index in range(3):
            assert_saved_jpeg_matches(images_dir, serial, position_index, image_host)


def assert_saved_jpeg_matches(images_dir: Path, serial: int, position_index: int, host: LocalServer) -> None:
    saved = sorted(images_dir.glob(f"{serial}-*.jpg"))[position_index]
    source = Image.open(io.BytesIO(host.files[f"img/{(serial - 1) * 3 + position_index}.jpg"]))
    with Image.open(saved) as picture:
        picture.load()
        assert picture.format == "JPEG"
        assert picture.size == source.size


async def test_a_request_with_a_failed_image_exits_2_with_the_failure_in_the_summary(
    image_host, cli_env, tmp_path
):
    products = write_products(tmp_path / "products.csv", image_host, [["0.jpg", "missing.jpg"], ["1.jpg"]])

    submitted = await submit_and_wait(cli_env, products)

    assert submitted.exit_code == 2, submitted.stderr + submitted.stdout
    document = submitted.json()
    assert document["status"]["status"] == "completed_with_errors"
    summary = document["summary"]
    assert (summary["images"], summary["done"], summary["failed"]) == (3, 2, 1)
    assert sum(summary["failures_by_reason"].values()) == 1
    assert "unknown" not in summary["failures_by_reason"]

    request_id = document["accepted"]["request_id"]
    status = await imgpipe(cli_env, "status", request_id)
    failed = await imgpipe(cli_env, "images", request_id, "--failed", "--json")

    assert status.exit_code == 2
    assert "completed_with_errors" in status.stdout
    assert [item["input_url"] for item in failed.json()["items"]] == [image_host.url("img/missing.jpg")]


async def test_a_request_whose_every_image_fails_exits_1(image_host, cli_env, tmp_path):
    products = write_products(tmp_path / "products.csv", image_host, [["gone-1.jpg", "gone-2.jpg"]])

    submitted = await submit_and_wait(cli_env, products)

    assert submitted.exit_code == 1, submitted.stderr + submitted.stdout
    document = submitted.json()
    assert document["status"]["status"] == "failed"
    assert (document["summary"]["done"], document["summary"]["failed"]) == (0, 2)


async def test_server_side_validation_errors_reach_the_user_as_a_table(cli_env, tmp_path):
    products = tmp_path / "products.csv"
    products.write_text(
        "S. No.,Product Name,Input Image Urls\n1,Shirt,ftp://127.0.0.1/a.jpg\n1,Hat,http://127.0.0.1/b.jpg\n"
    )

    shown = await imgpipe(cli_env, "submit", products)

    assert shown.exit_code == 1
    assert "Validation errors" in shown.stderr
    assert "│   2 │ Input Image Urls │ URL must use http or https" in shown.stderr
    assert "│   3 │ S. No.           │ duplicate serial number 1" in shown.stderr
