"""The whole pipeline with the compressor storing into S3: a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pytest
from compressor.storage import object_key
from PIL import Image

from tests.integration.compressor.moto_s3 import CREDENTIALS, REGION, MotoServer
from tests.integration.compressor.stack import image_rows, members_with
from tests.support import images
from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.jpeg_quality import estimate_jpeg_quality
from tests.support.servers import serving

pytestmark = pytest.mark.e2e

BUCKET = "catalogue-media"
PREFIX = "compressed/v1"
SOURCES = {
    "a.jpg": (images.photo_jpeg(1024, 768, seed=21), (1024, 768)),
    "b.png": (images.rgba_png_with_transparency(), (64, 48)),
    "c.jpg": (images.cmyk_jpeg(), (64, 48)),
    "d.jpg": (images.oriented_jpeg(6), (48, 80)),
}


@pytest.fixture(scope="module")
def s3(pipeline):
    server = MotoServer(Path(pipeline.run_dir) / "logs" / "moto-s3.log").start()
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    public_read = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    client.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public_read]})
    )
    env = {
        "COMPRESSOR_STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
        "COMPRESSOR_S3_ENDPOINT_URL": server.endpoint,
        "COMPRESSOR_S3_REGION": REGION,
        **CREDENTIALS,
    }
    try:
        with members_with(pipeline, env):
            yield server
    finally:
        server.stop()


@pytest.fixture
async def image_host():
    async with serving({name: data for name, (data, _) in SOURCES.items()}) as server:
        yield server


async def test_outputs_are_stored_in_s3_under_deterministic_keys_and_fetchable(
    s3, pipeline, image_host, database_url
):
    names = [*SOURCES, "a.jpg"]  # a.jpg twice: one object, one download
    csv = csv_of(
        [
            (1, "Chair", [image_host.url(n) for n in names[:3]]),
            (2, "Table", [image_host.url(n) for n in names[3:]]),
        ]
    )
    key = bearer(pipeline.api_key())
    accepted = await upload_csv(f"http://127.0.0.1:{pipeline.ingest_port}", csv, headers=key)
    status = await wait_for_completion(accepted["status_url"], timeout=90, headers=key)
    assert (status["status"], status["processed_images"]) == ("completed", len(names))

    request_id = uuid.UUID(accepted["request_id"])
    rows = await image_rows(database_url, accepted["request_id"])
    secret = pipeline.media_key_secret().encode()
    keys = {f"{PREFIX}/{object_key(request_id, row['input_url'], secret=secret)}" for row in rows}
    assert {row["output_url"] for row in rows} == {f"{s3.endpoint}/{BUCKET}/{key}" for key in keys}
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{request_id}/")["Contents"]
    assert {obj["Key"] for obj in listed} == keys
    assert len(keys) == len(SOURCES)
    assert len(image_host.hits("a.jpg")) == 1

    async with httpx.AsyncClient(timeout=30) as client:
        for row in rows:
            resp = await client.get(row["output_url"])
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "image/jpeg"
            output = Image.open(io.BytesIO(resp.content))
            output.load()
            expected_size = SOURCES[row["input_url"].rsplit("/", 1)[1]][1]
            assert output.size == expected_size == (row["width"], row["height"])
            assert abs(estimate_jpeg_quality(resp.content) - 50) <= 2
