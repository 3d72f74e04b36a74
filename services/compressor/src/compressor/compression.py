"""Turn the bytes of any common image format into a JPEG, pure and synchronous."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import cast

from PIL import ExifTags, Image, ImageOps

_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_HIGH_BIT_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La"})
_ICC_COLOUR_SPACE_FOR_MODE = {"L": b"GRAY", "RGB": b"RGB "}
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


@dataclass(frozen=True)
class CompressionOptions:
    quality: int = 50
    max_pixels: int = 60_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 95:
            raise ValueError(f"quality must be within 1..95, got {self.quality}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")


@dataclass(frozen=True)
class CompressedImage:
    data: bytes
    width: int
    height: int
    input_format: str
    kept_original: bool


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
        _decode_pixels(image)
        input_format = str(image.format)
        original_is_usable = _original_can_be_kept(image)
        ImageOps.exif_transpose(image, in_place=True)
        encoded = _encode_as_jpeg(image, options.quality)
        width, height = image.size
    if original_is_usable and len(encoded) >= len(data):
        return CompressedImage(data, width, height, input_format, kept_original=True)
    return CompressedImage(encoded, width, height, input_format, kept_original=False)


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


def _decode_pixels(image: Image.Image) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageRejected("decompression_bomb", str(error)) from error
    except _UNDECODABLE as error:
        raise ImageRejected("truncated_image", f"image data cannot be decoded: {error}") from error


def _original_can_be_kept(image: Image.Image) -> bool:
    """A JPEG is served as is only if it already looks right: upright and RGB or gray."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return image.format in _JPEG_FORMATS and image.mode in ("L", "RGB") and orientation not in range(2, 9)


def _encode_as_jpeg(image: Image.Image, quality: int) -> bytes:
    try:
        converted = _in_jpeg_mode(image)
        icc_profile = _icc_profile_matching(image.info.get("icc_profile"), converted.mode)
        buffer = io.BytesIO()
        converted.save(buffer, "JPEG", quality=quality, icc_profile=icc_profile)
    except (OSError, ValueError) as error:
        message = f"{image.mode} image cannot be made a JPEG: {error}"
        raise ImageRejected("unsupported_image", message) from error
    return buffer.getvalue()


def _in_jpeg_mode(image: Image.Image) -> Image.Image:
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        return _scaled_to_8_bit(image)
    if image.has_transparency_data:
        return _flattened_onto_white(image)
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("L" if image.mode in _GRAYSCALE_MODES else "RGB")


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
    target_mode = "L" if image.mode in _GRAYSCALE_MODES else "RGB"
    with_alpha = image.convert(target_mode + "A")
    background = Image.new(target_mode, image.size, "white")
    background.paste(with_alpha, mask=with_alpha.getchannel("A"))
    return background


def _icc_profile_matching(icc_profile: bytes | None, mode: str) -> bytes | None:
    """Keep a profile only for the colour space it describes (a CMYK one would break RGB)."""
    if icc_profile and icc_profile[16:20] == _ICC_COLOUR_SPACE_FOR_MODE.get(mode):
        return icc_profile
    return None
