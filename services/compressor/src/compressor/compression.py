"""Turn the bytes of any common image format into a JPEG, WebP or AVIF, pure and synchronous.

Decoding is guarded here (pixel limit before any pixel is decoded, EPS refused, a reason code
for every failure); how each format is written is in `encoders`, how quality=auto chooses in
`auto_quality`. Never larger: an original that can be served as it is and is smaller than the
re-encode is kept, in its own format.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from PIL import ExifTags, Image, ImageFile, ImageOps

from . import auto_quality
from .encoders import (
    CONTENT_TYPES,
    OUTPUT_FORMATS,
    PILLOW_NAMES,
    EncodeError,
    EncodeSettings,
    OutputFormat,
    encode,
    prepared,
)

# Decoding EPS starts a Ghostscript process, which has no place in this function.
_REFUSED_FORMATS = frozenset({"EPS"})
# (offset, magic) of the formats we expect, to tell a broken image from something else.
_IMAGE_SIGNATURES = (
    (0, b"\xff\xd8\xff"),
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"GIF8"),
    (8, b"WEBP"),
    (0, b"BM"),
    (0, b"II*\x00"),
    (0, b"MM\x00*"),
    (4, b"ftyp"),
)
_UNDECODABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
# The decoder is handed the input in pieces of up to this many bytes rather than Pillow's 64 KiB.
# Between pieces Pillow returns to Python, which takes the GIL back from the member's event loop
# and its other Pillow thread; most inputs now go in one piece. A piece is a copy of that much of
# the input, held while it decodes: 4 MiB bounds that on top of the memory budget's estimate.
DECODE_PIECE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CompressionOptions:
    quality: int | Literal["auto"] = 50
    max_pixels: int = 60_000_000
    format: OutputFormat = "jpeg"
    optimize: bool = False
    progressive: bool = False
    auto_threshold: float = auto_quality.DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.quality != "auto" and not (isinstance(self.quality, int) and 1 <= self.quality <= 95):
            raise ValueError(f"quality must be within 1..95 or 'auto', got {self.quality!r}")
        if self.format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {self.format!r}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")
        if not 0 < self.auto_threshold < 1:
            raise ValueError(f"auto_threshold must be within (0, 1), got {self.auto_threshold}")

    def encode_settings(self, quality: int) -> EncodeSettings:
        return EncodeSettings(self.format, quality, self.optimize, self.progressive)


@dataclass(frozen=True)
class CompressedImage:
    data: bytes
    width: int
    height: int
    input_format: str
    kept_original: bool
    format: OutputFormat = "jpeg"  # of `data`: the original's when it was kept
    quality: int | None = None  # the quality encoded at (chosen, for auto); None when kept
    score: float | None = None  # SSIM against the input, measured by quality=auto

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class ImageRejected(Exception):
    """Permanent failure for this image, with a machine-readable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[str, str]]:
        # It crosses the process pool by pickle; the default would call __init__ with one argument.
        return (type(self), (self.code, self.message))


def compress(data: bytes, options: CompressionOptions) -> CompressedImage:
    with _open_image(data, options.max_pixels) as image:
        _decode_pixels(image, len(data))
        input_format = str(image.format)
        kept_format = _format_if_kept(image, options.format)
        ImageOps.exif_transpose(image, in_place=True)
        picture = _prepared(image, options.format)
        icc_profile = image.info.get("icc_profile")
        width, height = image.size
        encoded, quality, score = _encoded(picture, options, icc_profile)
    if kept_format and len(encoded) >= len(data):
        return CompressedImage(data, width, height, input_format, True, kept_format)
    return CompressedImage(encoded, width, height, input_format, False, options.format, quality, score)


def _encoded(
    picture: Image.Image, options: CompressionOptions, icc_profile: bytes | None
) -> tuple[bytes, int, float | None]:
    """The output bytes, the quality they were encoded at, and their score (quality=auto only)."""
    if options.quality != "auto":
        return _encode(picture, options.encode_settings(options.quality), icc_profile), options.quality, None
    boxes = auto_quality.tile_boxes(*picture.size)
    proxy = auto_quality.mosaic(picture, boxes)
    reference = auto_quality.luma(proxy)
    trials: dict[int, bytes] = {}

    def score_at(quality: int) -> float:
        trials[quality] = _encode(proxy, options.encode_settings(quality), icc_profile)
        return auto_quality.ssim(reference, auto_quality.decoded_luma(trials[quality]))

    choice = auto_quality.lowest_passing(score_at, options.auto_threshold)
    if proxy is picture and choice.quality in trials:  # the trial was the whole picture
        return trials[choice.quality], choice.quality, choice.score
    outputs: dict[int, bytes] = {}

    def output_score(quality: int) -> float:
        outputs[quality] = _encode(picture, options.encode_settings(quality), icc_profile)
        return _score_of_output(outputs[quality], boxes, reference)

    quality, score = auto_quality.confirmed(choice.quality, output_score, options.auto_threshold)
    return outputs[quality], quality, score


def _score_of_output(output: bytes, boxes: list[tuple[int, int, int, int]], reference: Any) -> float:
    """The SSIM of the real output over the proxy's tiles: what is reported, not the trial's."""
    with Image.open(io.BytesIO(output)) as decoded:
        decoded.load()
        return auto_quality.ssim(reference, auto_quality.luma(auto_quality.mosaic(decoded, boxes)))


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Read only the header, and refuse what is too large before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected("decompression_bomb", str(error)) from error
    except _UNDECODABLE as error:
        raise _unreadable(data, error) from error
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        message = f"{width}x{height} is more than {max_pixels} pixels"
        raise ImageRejected("decompression_bomb", message)
    if image.format in _REFUSED_FORMATS:
        image.close()
        raise ImageRejected("unsupported_image", f"{image.format} input is not accepted")
    return image


def _unreadable(data: bytes, error: Exception) -> ImageRejected:
    if any(data.startswith(magic, offset) for offset, magic in _IMAGE_SIGNATURES):
        return ImageRejected("truncated_image", f"image header is broken: {error}")
    return ImageRejected("not_an_image", "the bytes are not an image format Pillow knows")


def _decode_pixels(image: Image.Image, size: int) -> None:
    if isinstance(image, ImageFile.ImageFile):
        image.decodermaxblock = max(image.decodermaxblock, min(size, DECODE_PIECE_BYTES))
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageRejected("decompression_bomb", str(error)) from error
    except _UNDECODABLE as error:
        raise ImageRejected("truncated_image", f"image data cannot be decoded: {error}") from error


def _format_if_kept(image: Image.Image, output_format: OutputFormat) -> OutputFormat | None:
    """The format the original is served in if it is kept (it is smaller), or None if it cannot be.

    Only originals that already look right qualify: upright, one frame, and either an RGB or gray
    JPEG (served as it is whatever format was asked for: every browser shows a JPEG) or the very
    format that was asked for. A PNG or a CMYK JPEG is always converted.
    """
    kept = PILLOW_NAMES.get(str(image.format))
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if kept is None or orientation in range(2, 9):
        return None
    if kept == "jpeg":  # an MPO's second frame does no harm: browsers show the first
        return kept if image.mode in ("L", "RGB") else None
    animated = getattr(image, "n_frames", 1) > 1
    return kept if kept == output_format and not animated else None


def _prepared(image: Image.Image, output_format: OutputFormat) -> Image.Image:
    try:
        return prepared(image, output_format)
    except (OSError, ValueError) as error:
        message = f"{image.mode} image cannot be made {output_format}: {error}"
        raise ImageRejected("unsupported_image", message) from error


def _encode(picture: Image.Image, settings: EncodeSettings, icc_profile: bytes | None) -> bytes:
    try:
        return encode(picture, settings, icc_profile)
    except EncodeError as error:
        raise ImageRejected("unsupported_image", str(error)) from error
