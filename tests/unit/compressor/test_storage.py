"""Storage URLs, deterministic keys and the local file store."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from compressor.config import Settings
from compressor.storage import (
    MIN_MEDIA_KEY_SECRET,
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


SECRET = b"unit-test-media-key-secret-0123456789"
URL = "https://shop.example/a.jpg"


def test_keys_are_one_per_url_within_a_request():
    key = object_key(REQUEST, URL, secret=SECRET)
    assert key == object_key(REQUEST, URL, secret=SECRET)
    assert key.startswith(f"{REQUEST}/")
    assert key.endswith(".jpg")
    assert key != object_key(REQUEST, "https://shop.example/b.jpg", secret=SECRET)
    assert key != object_key(uuid.uuid4(), URL, secret=SECRET)


def unkeyed_names(request_id: uuid.UUID, url: str) -> set[str]:
    """What someone who knows the request id and the URL (but not the secret) could compute."""
    texts = [url, f"{request_id}{url}", f"{request_id}\n{url}", f"{request_id}/{url}"]
    return {
        getattr(hashlib, algorithm)(text.encode()).hexdigest()[:32]
        for text in texts
        for algorithm in ("sha256", "sha1", "md5", "blake2b")
    }


def test_the_name_cannot_be_computed_from_the_request_id_and_url_alone():
    name = object_key(REQUEST, URL, secret=SECRET).removeprefix(f"{REQUEST}/").removesuffix(".jpg")
    assert len(name) == 32  # 128 bits
    assert name not in unkeyed_names(REQUEST, URL)  # the unkeyed name of the old code was sha256(url)
    assert name != object_key(REQUEST, URL, secret=b"").split("/")[1].removesuffix(".jpg")
    assert object_key(REQUEST, URL, secret=b"another-deployment-secret-0123456789") != object_key(
        REQUEST, URL, secret=SECRET
    )


def test_the_name_is_the_same_in_two_runs_with_the_same_secret(monkeypatch):
    monkeypatch.setenv("COMPRESSOR_MEDIA_KEY_SECRET", SECRET.decode())
    first, second = Settings().media_secret(), Settings().media_secret()  # two member starts
    assert object_key(REQUEST, URL, secret=first) == object_key(REQUEST, URL, secret=second)


@pytest.mark.parametrize("value", [None, "", "x" * (MIN_MEDIA_KEY_SECRET - 1)])
def test_a_member_refuses_to_run_without_a_long_enough_media_key_secret(monkeypatch, value):
    monkeypatch.delenv("COMPRESSOR_MEDIA_KEY_SECRET", raising=False)
    if value is not None:
        monkeypatch.setenv("COMPRESSOR_MEDIA_KEY_SECRET", value)
    with pytest.raises(ValueError, match="COMPRESSOR_MEDIA_KEY_SECRET"):
        Settings(_env_file=None).media_secret()


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
    key = object_key(REQUEST, "http://x/a.jpg", secret=SECRET)
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
