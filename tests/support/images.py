"""Test images built in memory with Pillow, one function per case, each returning file bytes."""

from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO

from PIL import Image, ImageCms, ImageDraw, ImageFilter

RED = (220, 20, 30)
BLUE = (20, 40, 220)
CYAN_CMYK = (255, 0, 0, 0)
ORIENTATION_TAG = 0x0112
# Size of the coloured block in a corner of the orientation test pictures (stored pixels).
CORNER_BLOCK = (20, 12)
ORIENTATION_SIZE = (80, 48)


def encoded(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cmyk_tagged_profile() -> bytes:
    """The sRGB profile relabelled as CMYK: enough to check a CMYK profile is dropped."""
    profile = bytearray(srgb_profile())
    profile[16:20] = b"CMYK"
    return bytes(profile)


def rgba_png_with_transparency() -> bytes:
    """Left half fully transparent black, right half opaque blue."""
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    image.paste((*BLUE, 255), (32, 0, 64, 48))
    return encoded(image, "PNG")


def la_png_with_transparency() -> bytes:
    """Gray with alpha: left half fully transparent black, right half opaque dark gray."""
    image = Image.new("LA", (64, 48), (0, 0))
    image.paste((60, 255), (32, 0, 64, 48))
    return encoded(image, "PNG")


def palette_png_with_transparency() -> bytes:
    """Palette image whose left half uses a black index marked transparent by tRNS."""
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, *RED])
    image.paste(1, (32, 0, 64, 48))
    return encoded(image, "PNG", transparency=0)


def cmyk_jpeg(icc_profile: bytes | None = None) -> bytes:
    image = Image.new("CMYK", (64, 48), CYAN_CMYK)
    return encoded(image, "JPEG", quality=90, icc_profile=icc_profile)


def oriented_jpeg(orientation: int, quality: int = 90) -> bytes:
    """Landscape pixels, red block in the stored top-left corner, with an EXIF orientation."""
    image = Image.new("RGB", ORIENTATION_SIZE, "white")
    image.paste(RED, (0, 0, *CORNER_BLOCK))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return encoded(image, "JPEG", quality=quality, exif=exif.tobytes())


def gray16_png() -> bytes:
    """16-bit grayscale, black on the left rising to full white on the right."""
    width, height = 256, 8
    row = [round(x * 65535 / (width - 1)) for x in range(width)]
    image = Image.new("I", (width, height))
    image.putdata(row * height)
    image = image.convert("I;16")
    assert image.mode == "I;16"
    return encoded(image, "PNG")


def gray8_png() -> bytes:
    return encoded(Image.linear_gradient("L").resize((64, 48)), "PNG")


def _two_frames() -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), RED), Image.new("RGB", (32, 32), BLUE)]


def animated_gif() -> bytes:
    first, second = _two_frames()
    return encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def webp() -> bytes:
    return encoded(_photo_like(96, 64, random.Random(3)), "WEBP", quality=90)


def animated_webp() -> bytes:
    first, second = _two_frames()
    return encoded(first, "WEBP", save_all=True, append_images=[second], duration=100)


def bmp() -> bytes:
    return encoded(_photo_like(96, 64, random.Random(4)), "BMP")


def tiff() -> bytes:
    return encoded(_photo_like(96, 64, random.Random(5)), "TIFF")


def jpeg_at_quality_30() -> bytes:
    """Already compressed further than the pipeline would (q30, optimized Huffman tables): any
    re-encoding at q50, optimized or not, is larger, so the original must be kept."""
    return encoded(_photo_like(320, 240, random.Random(0)), "JPEG", quality=30, optimize=True)


def truncated_jpeg() -> bytes:
    whole = photo_jpeg(320, 240)
    return whole[: len(whole) // 2]


def jpeg_with_icc_profile() -> bytes:
    return encoded(_photo_like(96, 64, random.Random(6)), "JPEG", icc_profile=srgb_profile())


def eps_bytes() -> bytes:
    """PostScript, which Pillow recognises but could only render through Ghostscript."""
    return encoded(Image.new("RGB", (16, 16), RED), "EPS")


def html_bytes() -> bytes:
    return b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>404</body></html>\n"


def garbage_bytes() -> bytes:
    return random.Random(7).randbytes(4096)


def decompression_bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of only zeros: tens of KB on disk, hundreds of MB once decoded."""
    scanline = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then packed pixels
    compressor = zlib.compressobj(9)
    rows_per_chunk = 1000
    parts = [compressor.compress(scanline * rows_per_chunk) for _ in range(height // rows_per_chunk)]
    parts.append(compressor.compress(scanline * (height % rows_per_chunk)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def photo_jpeg(width: int, height: int, quality: int = 92, seed: int = 0) -> bytes:
    """A picture with smooth shading, colour blobs and grain, which JPEG compresses like a photo."""
    return encoded(_photo_like(width, height, random.Random(seed)), "JPEG", quality=quality)


def _photo_like(width: int, height: int, rng: random.Random) -> Image.Image:
    size = (width, height)
    shading = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
        ),
    )
    blobs = _random_rgb(rng, max(2, width // 48), max(2, height // 48)).resize(size, Image.Resampling.BICUBIC)
    detail = _random_rgb(rng, max(2, width // 6), max(2, height // 6)).resize(size, Image.Resampling.BILINEAR)
    grain = Image.frombytes("L", size, rng.randbytes(width * height)).convert("RGB")
    picture = Image.blend(Image.blend(shading, blobs, 0.6), detail, 0.15)
    return Image.blend(picture, grain, 0.06)


def _random_rgb(rng: random.Random, width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


# --- product images for the benchmark (large; bench/pipeline_bench.py caches them on disk) ---


def product_photo_jpeg(width: int, height: int, seed: int, quality: int = 88) -> bytes:
    """An RGB product photo as a shop would upload it."""
    return photo_jpeg(width, height, quality=quality, seed=seed)


def product_cmyk_jpeg(width: int, height: int, seed: int) -> bytes:
    """A print-ready CMYK JPEG, as catalogues exported from layout tools often are."""
    picture = _photo_like(width, height, random.Random(seed)).convert("CMYK")
    return encoded(picture, "JPEG", quality=90)


def product_cutout_png(width: int, height: int, seed: int) -> bytes:
    """A product cut out on a transparent background (RGBA PNG), smooth like a real cut-out."""
    picture = _photo_like(width, height, random.Random(seed)).filter(ImageFilter.GaussianBlur(2))
    mask = Image.new("L", (width, height), 0)
    margin_x, margin_y = width // 8, height // 10
    ImageDraw.Draw(mask).ellipse((margin_x, margin_y, width - margin_x, height - margin_y), fill=255)
    picture.putalpha(mask)
    return encoded(picture, "PNG", compress_level=3)
