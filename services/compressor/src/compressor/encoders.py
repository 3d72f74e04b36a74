"""Encoding a decoded, upright picture as JPEG, WebP or AVIF: pure and synchronous.

JPEG has no alpha channel, so transparent pixels are flattened onto white (what a shop page
shows behind a cut-out). WebP and AVIF keep the alpha channel. Every encoder is bounded: the
picture is already limited in pixels by the caller, and AVIF, by far the slowest, runs at a fixed
speed on one thread (the pool around `compress` is what uses the cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from PIL import Image
from pipeline_schemas.images import OUTPUT_FORMATS, OutputFormat

from . import memfile

__all__ = ["OUTPUT_FORMATS", "OutputFormat", "EncodeSettings", "encode", "prepared"]

CONTENT_TYPES: dict[str, str] = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
# Pillow's names of the formats it reads, for the ones that can be served as they are.
PILLOW_NAMES: dict[str, OutputFormat] = {"JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp", "AVIF": "avif"}

# libaom speed 8 on one thread: a 12 MP photo in about 1.7 s of CPU here, against 5.8 s at
# Pillow's default speed 6 for about 11 % fewer bytes (bench/formats_bench.py, docs/api.md).
AVIF_SPEED = 8
AVIF_THREADS = 1
# WebP's default effort (0 fastest .. 6 smallest); 6 costs about twice the CPU for ~2 % bytes.
WEBP_METHOD = 4

_HIGH_BIT_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La"})
_ICC_COLOUR_SPACE_FOR_MODE = {"L": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}


class EncodeError(Exception):
    """The encoder refused this picture (a mode or size it cannot write)."""


@dataclass(frozen=True)
class EncodeSettings:
    format: OutputFormat = "jpeg"
    quality: int = 50
    optimize: bool = False  # JPEG only: optimal Huffman tables (same pixels, fewer bytes)
    progressive: bool = False  # JPEG only: progressive scans (Pillow optimizes them too)

    def __post_init__(self) -> None:
        if self.format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {self.format!r}")
        if not 1 <= self.quality <= 95:
            raise ValueError(f"quality must be within 1..95, got {self.quality}")


def prepared(image: Image.Image, output_format: OutputFormat) -> Image.Image:
    """The picture in a mode the encoder writes: 8-bit gray or RGB, with alpha where it is kept."""
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        return _scaled_to_8_bit(image)
    if image.has_transparency_data:
        if output_format == "jpeg":
            return _flattened_onto_white(image)
        # Neither WebP nor AVIF stores gray with alpha: both would convert to RGBA anyway.
        return image if image.mode == "RGBA" else image.convert("RGBA")
    # WebP has no gray mode either; converting here keeps a gray ICC profile off an RGB file.
    gray = image.mode in _GRAYSCALE_MODES and output_format != "webp"
    if image.mode == ("L" if gray else "RGB"):
        return image
    return image.convert("L" if gray else "RGB")


def encode(picture: Image.Image, settings: EncodeSettings, icc_profile: bytes | None = None) -> bytes:
    """`picture` comes from `prepared`; `icc_profile` is kept only if it matches its colour space."""
    params = _params(settings)
    profile = icc_profile_matching(icc_profile, picture.mode)
    if profile:
        params["icc_profile"] = profile
    try:
        return memfile.saved(picture, settings.format.upper(), params)
    except (OSError, ValueError) as error:
        raise EncodeError(f"{picture.mode} image cannot be made {settings.format}: {error}") from error


def _params(settings: EncodeSettings) -> dict[str, object]:
    if settings.format == "jpeg":
        return {
            "quality": settings.quality,
            "optimize": settings.optimize,
            "progressive": settings.progressive,
        }
    if settings.format == "webp":
        return {"quality": settings.quality, "method": WEBP_METHOD}
    return {"quality": settings.quality, "speed": AVIF_SPEED, "max_threads": AVIF_THREADS}


def icc_profile_matching(icc_profile: bytes | None, mode: str) -> bytes | None:
    """Keep a profile only for the colour space it describes (a CMYK one would break RGB)."""
    if icc_profile and icc_profile[16:20] == _ICC_COLOUR_SPACE_FOR_MODE.get(mode):
        return icc_profile
    return None


def _scaled_to_8_bit(image: Image.Image) -> Image.Image:
    """Pillow's own conversion of these modes clips everything above 255 to white."""
    low, high = _nominal_range(image)
    scale = 255 / (high - low) if high > low else 0.0
    as_float = image.convert("F")
    return as_float.point(lambda value: (value - low) * scale + 0.5).convert("L")


def _nominal_range(image: Image.Image) -> tuple[float, float]:
    if image.mode.startswith("I;16"):
        return 0, 65535
    # These modes (I, F) have one band, so the extrema are one (min, max) pair, not one per band.
    low, high = cast("tuple[float, float]", image.getextrema())
    if image.mode == "F" and 0 <= low and high <= 1:
        return 0, 1
    if image.mode == "I" and 0 <= low and high <= 65535:
        return 0, 65535
    return low, high


def _flattened_onto_white(image: Image.Image) -> Image.Image:
    """The picture over white. An RGBA or LA picture is its own mask (its alpha band), so neither it
    nor its alpha band is copied first: 5.2 -> 3.5 ms of CPU per PNG cut-out of the bench set."""
    target_mode = "L" if image.mode in _GRAYSCALE_MODES else "RGB"
    with_alpha = image if image.mode == target_mode + "A" else image.convert(target_mode + "A")
    background = Image.new(target_mode, image.size, "white")
    background.paste(with_alpha, mask=with_alpha)
    return background
