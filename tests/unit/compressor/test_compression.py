"""Tests for compressor.compression against a corpus of images generated in memory."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pytest
from compressor import compression
from compressor.compression import (
    CompressedImage,
    CompressionOptions,
    ImageRejected,
    compress,
)
from PIL import Image, ImageFile

from tests.support import images
from tests.support.jpeg_quality import estimate_jpeg_quality

WHITE = (255, 255, 255)
Q50 = CompressionOptions(quality=50)


def decoded(result: CompressedImage) -> Image.Image:
    image = Image.open(BytesIO(result.data))
    image.load()
    assert image.format == "JPEG"
    return image


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.size


def close_to(actual: tuple[int, ...] | int, expected: tuple[int, ...] | int, slack: int = 32) -> bool:
    actual_values = actual if isinstance(actual, tuple) else (actual,)
    expected_values = expected if isinstance(expected, tuple) else (expected,)
    return all(abs(a - e) <= slack for a, e in zip(actual_values, expected_values, strict=True))


def rejection_code(data: bytes, options: CompressionOptions = Q50) -> str:
    with pytest.raises(ImageRejected) as caught:
        compress(data, options)
    assert caught.value.message
    return caught.value.code


CONVERTIBLE: dict[str, tuple[Callable[[], bytes], str]] = {
    "rgba png": (images.rgba_png_with_transparency, "PNG"),
    "la png": (images.la_png_with_transparency, "PNG"),
    "palette png": (images.palette_png_with_transparency, "PNG"),
    "cmyk jpeg": (images.cmyk_jpeg, "JPEG"),
    "16-bit png": (images.gray16_png, "PNG"),
    "8-bit gray png": (images.gray8_png, "PNG"),
    "animated gif": (images.animated_gif, "GIF"),
    "webp": (images.webp, "WEBP"),
    "animated webp": (images.animated_webp, "WEBP"),
    "bmp": (images.bmp, "BMP"),
    "tiff": (images.tiff, "TIFF"),
    "jpeg with icc": (images.jpeg_with_icc_profile, "JPEG"),
    "large photo": (lambda: images.photo_jpeg(640, 480), "JPEG"),
}


@pytest.mark.parametrize("case", CONVERTIBLE, ids=str)
def test_every_supported_input_becomes_a_jpeg_of_the_same_size_at_the_requested_quality(
    case: str,
) -> None:
    make, expected_format = CONVERTIBLE[case]
    data = make()
    result = compress(data, Q50)
    output = decoded(result)
    assert output.size == size_of(data) == (result.width, result.height)
    assert result.input_format == expected_format
    assert result.kept_original is False
    assert abs(estimate_jpeg_quality(result.data) - 50) <= 2


def test_a_photo_is_encoded_at_quality_80_when_asked_and_comes_out_smaller() -> None:
    data = images.photo_jpeg(1600, 1200, quality=95)
    result = compress(data, CompressionOptions(quality=80))
    assert abs(estimate_jpeg_quality(result.data) - 80) <= 2
    assert decoded(result).size == (1600, 1200)
    assert len(result.data) < len(data) * 0.8


def test_a_photo_at_quality_50_is_less_than_half_the_size_of_its_quality_92_original() -> None:
    data = images.photo_jpeg(1200, 900)
    result = compress(data, Q50)
    assert not result.kept_original
    assert len(result.data) < len(data) / 2


@pytest.mark.parametrize(
    ("make", "opaque_colour"),
    [
        (images.rgba_png_with_transparency, images.BLUE),
        (images.palette_png_with_transparency, images.RED),
    ],
    ids=["rgba png", "palette png with tRNS"],
)
def test_transparent_areas_come_out_white_and_opaque_ones_keep_their_colour(
    make: Callable[[], bytes], opaque_colour: tuple[int, int, int]
) -> None:
    output = decoded(compress(make(), Q50))
    assert output.mode == "RGB"
    assert close_to(output.getpixel((8, 24)), WHITE)
    assert close_to(output.getpixel((56, 24)), opaque_colour)


def test_transparent_areas_of_a_gray_image_with_alpha_come_out_white_in_grayscale() -> None:
    output = decoded(compress(images.la_png_with_transparency(), Q50))
    assert output.mode == "L"
    assert close_to(output.getpixel((8, 24)), 255)
    assert close_to(output.getpixel((56, 24)), 60)


def test_a_cmyk_jpeg_becomes_an_rgb_jpeg_of_the_same_colour() -> None:
    output = decoded(compress(images.cmyk_jpeg(), Q50))
    assert output.mode == "RGB"
    assert close_to(output.getpixel((32, 24)), (0, 255, 255))


def test_the_profile_of_a_cmyk_jpeg_is_dropped_because_the_output_is_rgb() -> None:
    data = images.cmyk_jpeg(icc_profile=images.cmyk_tagged_profile())
    output = decoded(compress(data, Q50))
    assert output.mode == "RGB"
    assert not output.info.get("icc_profile")


def test_an_rgb_icc_profile_is_carried_into_the_output() -> None:
    output = decoded(compress(images.jpeg_with_icc_profile(), Q50))
    assert output.info.get("icc_profile") == images.srgb_profile()


def test_orientation_6_is_applied_so_the_corner_block_shows_top_right() -> None:
    stored_width, stored_height = images.ORIENTATION_SIZE
    result = compress(images.oriented_jpeg(6), Q50)
    output = decoded(result)
    assert output.size == (result.width, result.height) == (stored_height, stored_width)
    block_width, block_height = images.CORNER_BLOCK  # as stored, so displayed on its side
    top_right = (stored_height - block_height // 2, block_width // 2)
    assert close_to(output.getpixel(top_right), images.RED)
    assert close_to(output.getpixel((4, 4)), WHITE)
    assert close_to(output.getpixel((4, stored_width - 4)), WHITE)
    assert output.getexif().get(images.ORIENTATION_TAG, 1) == 1


def test_orientation_8_is_applied_so_the_corner_block_shows_bottom_left() -> None:
    stored_width, stored_height = images.ORIENTATION_SIZE
    result = compress(images.oriented_jpeg(8), Q50)
    output = decoded(result)
    assert output.size == (result.width, result.height) == (stored_height, stored_width)
    block_width, block_height = images.CORNER_BLOCK  # as stored, so displayed on its side
    bottom_left = (block_height // 2, stored_width - block_width // 2)
    assert close_to(output.getpixel(bottom_left), images.RED)
    assert close_to(output.getpixel((4, 4)), WHITE)
    assert close_to(output.getpixel((stored_height - 4, stored_width - 4)), WHITE)
    assert output.getexif().get(images.ORIENTATION_TAG, 1) == 1


def test_a_sixteen_bit_gradient_is_scaled_to_eight_bits_rather_than_clipped_to_white() -> None:
    output = decoded(compress(images.gray16_png(), Q50))
    assert output.mode == "L"
    assert output.getpixel((2, 4)) < 20
    assert close_to(output.getpixel((128, 4)), 128, slack=10)
    assert output.getpixel((253, 4)) > 235


def test_eight_bit_grayscale_stays_a_grayscale_gradient() -> None:
    output = decoded(compress(images.gray8_png(), Q50))
    assert output.mode == "L"
    assert output.getpixel((32, 2)) < 20
    assert output.getpixel((32, 45)) > 235


@pytest.mark.parametrize("make", [images.animated_gif, images.animated_webp], ids=["gif", "webp"])
def test_an_animation_is_reduced_to_its_first_frame(make: Callable[[], bytes]) -> None:
    output = decoded(compress(make(), Q50))
    assert close_to(output.getpixel((16, 16)), images.RED)


def test_a_jpeg_smaller_than_its_reencoding_is_kept_byte_for_byte() -> None:
    data = images.jpeg_at_quality_30()
    result = compress(data, Q50)
    assert result.kept_original is True
    assert result.data == data
    assert (result.width, result.height) == (320, 240)
    assert result.input_format == "JPEG"


def test_a_rotated_jpeg_is_reencoded_upright_even_when_that_is_bigger() -> None:
    data = images.oriented_jpeg(6, quality=30)
    result = compress(data, CompressionOptions(quality=95))
    assert len(result.data) >= len(data), "the case needs a re-encoding that is not smaller"
    assert result.kept_original is False
    assert decoded(result).size == (48, 80)


class _CountingDecoder:
    """Pillow's decoder, with the size of each piece of input it is handed written down."""

    def __init__(self, inner: object, pieces: list[int]) -> None:
        self._inner = inner
        self._pieces = pieces

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def decode(self, data: bytes) -> tuple[int, int]:
        self._pieces.append(len(data))
        return self._inner.decode(data)  # type: ignore[attr-defined,no-any-return]


def _decode_pieces(monkeypatch: pytest.MonkeyPatch, data: bytes) -> tuple[list[int], bytes]:
    pieces: list[int] = []
    real = Image._getdecoder
    monkeypatch.setattr(Image, "_getdecoder", lambda *args: _CountingDecoder(real(*args), pieces))
    return pieces, compress(data, Q50).data


def test_a_photo_is_decoded_in_one_piece_to_the_same_output_as_in_pillows_64_kib_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = images.photo_jpeg(1200, 900, quality=95)
    assert 256 * 1024 < len(data) < compression.DECODE_PIECE_BYTES, (
        "the case needs a larger-than-64 KiB input"
    )
    pieces, output = _decode_pieces(monkeypatch, data)
    assert len(pieces) == 1

    monkeypatch.setattr(compression, "DECODE_PIECE_BYTES", 64 * 1024)
    small_pieces, same_output = _decode_pieces(monkeypatch, data)
    assert len(small_pieces) > 4
    assert max(small_pieces) <= 2 * 64 * 1024
    assert same_output == output


def test_an_input_larger_than_one_piece_is_decoded_in_pieces_of_at_most_that_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = images.photo_jpeg(1200, 900, quality=95)
    monkeypatch.setattr(compression, "DECODE_PIECE_BYTES", len(data) // 3)
    pieces, _ = _decode_pieces(monkeypatch, data)
    assert 3 <= len(pieces) <= 6
    assert max(pieces) < 2 * (len(data) // 3)  # a piece plus what the decoder left of the last one


def test_a_truncated_jpeg_is_rejected_as_truncated() -> None:
    assert rejection_code(images.truncated_jpeg()) == "truncated_image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("make", [images.photo_jpeg, images.decompression_bomb_png], ids=["jpeg", "png"])
def test_an_image_cut_inside_its_header_is_truncated_rather_than_unknown(
    make: Callable[..., bytes],
) -> None:
    data = make(64, 64)
    assert rejection_code(data[:24]) == "truncated_image"


@pytest.mark.parametrize("make", [images.html_bytes, images.garbage_bytes], ids=["html", "garbage"])
def test_bytes_that_are_not_an_image_are_rejected_as_not_an_image(
    make: Callable[[], bytes],
) -> None:
    assert rejection_code(make()) == "not_an_image"


def test_empty_bytes_are_not_an_image() -> None:
    assert rejection_code(b"") == "not_an_image"


def test_postscript_is_refused_instead_of_running_ghostscript() -> None:
    assert rejection_code(images.eps_bytes()) == "unsupported_image"


@pytest.fixture
def pixel_decoding_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(image: ImageFile.ImageFile) -> None:
        raise AssertionError(f"pixels of a {image.size} image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.usefixtures("pixel_decoding_forbidden")
def test_a_decompression_bomb_is_rejected_from_its_header_without_decoding() -> None:
    assert rejection_code(images.decompression_bomb_png()) == "decompression_bomb"


@pytest.mark.usefixtures("pixel_decoding_forbidden")
def test_the_pixel_limit_holds_even_when_pillows_own_limit_is_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert rejection_code(images.decompression_bomb_png()) == "decompression_bomb"


@pytest.mark.usefixtures("pixel_decoding_forbidden")
def test_an_image_just_over_the_configured_pixel_limit_is_rejected() -> None:
    data = images.decompression_bomb_png(100, 100)
    assert rejection_code(data, CompressionOptions(max_pixels=9_999)) == "decompression_bomb"


def test_an_image_exactly_at_the_configured_pixel_limit_is_accepted() -> None:
    result = compress(images.decompression_bomb_png(100, 100), CompressionOptions(max_pixels=10_000))
    assert decoded(result).size == (100, 100)


@pytest.mark.usefixtures("pixel_decoding_forbidden")
def test_pillows_bomb_warning_is_reported_as_a_decompression_bomb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10 000 pixels only warns
    data = images.decompression_bomb_png(100, 100)
    assert rejection_code(data) == "decompression_bomb"


@pytest.mark.usefixtures("pixel_decoding_forbidden")
def test_pillows_own_bomb_error_is_reported_as_a_decompression_bomb() -> None:
    generous = CompressionOptions(max_pixels=10**12)
    assert rejection_code(images.decompression_bomb_png(), generous) == "decompression_bomb"


@pytest.mark.parametrize("quality", [0, 96])
def test_options_refuse_a_quality_outside_1_to_95(quality: int) -> None:
    with pytest.raises(ValueError, match="quality"):
        CompressionOptions(quality=quality)
