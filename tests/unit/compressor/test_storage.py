"""Storage URLs, deterministic keys and the local file store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from compressor.storage import (
    FileLocation,
    LocalImageStore,
    S3Location,
    StorageSettings,
    object_key,
    open_store,
    parse_storage_url,
    s3_public_base_url,
)

REQUEST = uuid.UUID("12345678-1234-4234-8234-123456789abc")


def test_keys_are_one_per_url_within_a_request():
    key = object_key(REQUEST, "https://shop.example/a.jpg")
    assert key == object_key(REQUEST, "https://shop.example/a.jpg")
    assert key.startswith(f"{REQUEST}/")
    assert key.endswith(".jpg")
    assert key != object_key(REQUEST, "https://shop.example/b.jpg")
    assert key != object_key(uuid.uuid4(), "https://shop.example/a.jpg")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/media", FileLocation(Path("/srv/media"))),
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://bucket/some/prefix/", S3Location("bucket", "some/prefix")),
    ],
)
def test_storage_urls(url, expected):
    assert parse_storage_url(url) == expected


@pytest.mark.parametrize("url", ["file://host/x", "file:relative", "s3:///nobucket", "gs://b/p", "/plain"])
def test_bad_storage_urls_are_refused(url):
    with pytest.raises(ValueError, match="storage URL"):
        parse_storage_url(url)


def test_public_base_urls():
    assert s3_public_base_url("b", "http://127.0.0.1:9000/", "eu-west-1") == "http://127.0.0.1:9000/b"
    assert s3_public_base_url("b", None, "eu-west-1") == "https://b.s3.eu-west-1.amazonaws.com"
    assert s3_public_base_url("b", None, "x", "https://cdn.example/img/") == "https://cdn.example/img"


async def test_local_store_writes_atomically_and_overwrites(tmp_path):
    store = LocalImageStore(tmp_path, "http://media.test/media/")
    key = object_key(REQUEST, "http://x/a.jpg")
    url = await store.save(key, b"one")
    assert url == f"http://media.test/media/{key}"
    assert await store.save(key, b"two") == url
    assert (tmp_path / key).read_bytes() == b"two"
    assert [p.name for p in (tmp_path / str(REQUEST)).iterdir()] == [key.split("/")[1]]


async def test_file_storage_url_overrides_media_dir(tmp_path):
    settings = StorageSettings(f"file://{tmp_path}/out", tmp_path / "unused", "http://m.test")
    async with open_store(settings) as store:
        await store.save("k.jpg", b"x")
    assert (tmp_path / "out" / "k.jpg").exists()
    assert not (tmp_path / "unused").exists()
