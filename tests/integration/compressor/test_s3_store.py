"""The S3 store against a real S3-compatible server (moto in server mode, on loopback)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from compressor.storage import StorageError, StorageSettings, object_key, open_store

from tests.integration.compressor.moto_s3 import CREDENTIALS, REGION, MotoServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def s3_server():
    server = MotoServer(REPO / ".run" / "moto-integration.log").start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server, monkeypatch) -> str:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"media-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def public_bucket(s3_server, bucket) -> str:
    s3_server.client().put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    return bucket


def public_read_policy(bucket: str) -> str:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{**statement, "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    )


def s3_settings(server: MotoServer, url: str, **extra) -> StorageSettings:
    return StorageSettings(
        storage_url=url,
        media_dir=Path("/nonexistent"),
        media_base_url="http://unused.test",
        s3_endpoint_url=server.endpoint,
        s3_region=REGION,
        **extra,
    )


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_objects_land_under_deterministic_keys_and_their_urls_are_fetchable(s3_server, public_bucket):
    bucket = public_bucket
    request_id = uuid.uuid4()
    key = object_key(request_id, "http://shop.test/a.jpg", secret=b"s3-store-test-key")
    async with open_store(s3_settings(s3_server, f"s3://{bucket}/compressed/v1")) as store:
        url = await store.save(key, b"\xff\xd8first")
        again = await store.save(key, b"\xff\xd8second")  # a re-run overwrites
    assert again == url == f"{s3_server.endpoint}/{bucket}/compressed/v1/{key}"
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"compressed/v1/{key}"]
    resp = await fetch(url)
    assert resp.status_code == 200
    assert resp.content == b"\xff\xd8second"
    assert resp.headers["content-type"] == "image/jpeg"


async def test_a_public_base_url_names_where_objects_are_served(s3_server, bucket):
    settings = s3_settings(s3_server, f"s3://{bucket}", s3_public_base_url="https://cdn.example/")
    async with open_store(settings) as store:
        url = await store.save("r/k.jpg", b"x")
    assert url == "https://cdn.example/r/k.jpg"


async def test_a_missing_bucket_is_a_storage_error(s3_server, bucket):
    async with open_store(s3_settings(s3_server, "s3://no-such-bucket-here/p")) as store:
        with pytest.raises(StorageError, match="no-such-bucket-here"):
            await store.save("k.jpg", b"x")


async def test_objects_are_private_unless_the_bucket_or_an_acl_makes_them_public(s3_server, bucket):
    async with open_store(s3_settings(s3_server, f"s3://{bucket}")) as store:
        private = await store.save("private.jpg", b"x")
    async with open_store(s3_settings(s3_server, f"s3://{bucket}", s3_acl="public-read")) as store:
        public = await store.save("public.jpg", b"y")
    assert (await fetch(private)).status_code == 403
    assert (await fetch(public)).content == b"y"
