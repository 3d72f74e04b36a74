"""Encoding through an in-memory file gives the very bytes BytesIO would, and leaks no descriptor."""

from __future__ import annotations

import io
import os

import pytest
from compressor import memfile
from PIL import Image

CASES = [
    ("RGB", "JPEG", {"quality": 50}),
    ("RGB", "JPEG", {"quality": 50, "optimize": True, "progressive": True}),
    ("RGBA", "WEBP", {"quality": 50, "method": 4}),
    ("RGBA", "AVIF", {"quality": 50, "speed": 8, "max_threads": 1}),
]


def picture(mode: str) -> Image.Image:
    image = Image.effect_noise((320, 240), 40).convert(mode)
    image.putpixel((0, 0), (10, 20, 30, 0) if mode == "RGBA" else (10, 20, 30))
    return image


def in_bytesio(image: Image.Image, name: str, params: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, name, **params)
    return buffer.getvalue()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(("mode", "name", "params"), CASES)
def test_the_bytes_are_those_bytesio_gets(mode, name, params):
    image = picture(mode)
    assert memfile.saved(image, name, params) == in_bytesio(image, name, params)


@pytest.mark.parametrize(("mode", "name", "params"), CASES[:1] + CASES[2:3])
def test_without_memfd_the_same_bytes(monkeypatch, mode, name, params):
    monkeypatch.setattr(memfile, "_MEMFD", None)
    image = picture(mode)
    assert memfile.saved(image, name, params) == in_bytesio(image, name, params)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux only; elsewhere BytesIO is used")
def test_a_failed_encode_raises_and_closes_its_file():
    before = open_descriptors()
    with pytest.raises(OSError, match="RGBA"):
        memfile.saved(picture("RGBA"), "JPEG", {"quality": 50})  # JPEG has no alpha
    for _ in range(50):
        memfile.saved(picture("RGB"), "JPEG", {"quality": 50})
    assert open_descriptors() == before
