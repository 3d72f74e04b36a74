"""Output formats (JPEG, WebP, AVIF) and quality=auto, over the generated image corpus."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pytest
from compressor import auto_quality
from compressor.compression import CompressedImage, CompressionOptions, ImageRejected, compress
from compressor.encoders import prepared
from PIL import Image, ImageOps

from tests.support import images

FORMATS = ("jpeg", "webp", "avif")
PILLOW_NAME = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
CONTENT_TYPE = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
THRESHOLD = auto_quality.DEFAULT_THRESHOLD

CORPUS: dict[str, Callable[[], bytes]] = {
    "rgba png": images.rgba_png_with_transparency,
    "la png": images.la_png_with_transparency,
    "palette png": images.palette_png_with_transparency,
    "cmyk jpeg": images.cmyk_jpeg,
    "16-bit png": images.gray16_png,
    "8-bit gray png": images.gray8_png,
    "animated gif": images.animated_gif,
    "webp": images.webp,
    "bmp": images.bmp,
    "tiff": images.tiff,
    "oriented jpeg": lambda: images.oriented_jpeg(6),
    "jpeg with icc": images.jpeg_with_icc_profile,
    "photo": lambda: images.photo_jpeg(640, 480),
    "cut-out": lambda: images.product_cutout_png(640, 640, seed=1),
}
# The bench set's mix (bench/pipeline_bench.py: 8 RGB photos, 1 CMYK photo, 1 cut-out in 10), with
# its generators, at a size a unit test can afford: what quality=auto's threshold was set on.
PRODUCTS: dict[str, Callable[[], bytes]] = {
    **{
        f"product photo {seed}": lambda seed=seed: images.product_photo_jpeg(720, 540, seed)
        for seed in range(8)
    },
    "cmyk product photo": lambda: images.product_cmyk_jpeg(720, 540, seed=8),
    "product cut-out": lambda: images.product_cutout_png(720, 540, seed=9),
}
# Above auto_quality.WHOLE_PICTURE_PIXELS: quality=auto decides on a mosaic of tiles.
LARGE: dict[str, Callable[[], bytes]] = {
    "large photo": lambda: images.photo_jpeg(1600, 1200, quality=95, seed=2),
    "large cut-out": lambda: images.product_cutout_png(1280, 1024, seed=3),
}


def opened(result: CompressedImage) -> Image.Image:
    image = Image.open(BytesIO(result.data))
    image.load()
    return image


def upright_size(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).size


def full_ssim(data: bytes, result: CompressedImage) -> float:
    """SSIM over the whole picture, computed here independently of the proxy the search used."""
    with Image.open(BytesIO(data)) as source:
        source.load()
        reference = prepared(ImageOps.exif_transpose(source), result.format)
    return auto_quality.ssim(auto_quality.luma(reference), auto_quality.luma(opened(result)))


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_every_input_becomes_the_requested_format_with_its_upright_size(
    case: str, output_format: str
) -> None:
    data = CORPUS[case]()
    result = compress(data, CompressionOptions(50, format=output_format))  # type: ignore[arg-type]
    output = opened(result)
    assert result.kept_original is False
    assert (result.format, result.content_type) == (output_format, CONTENT_TYPE[output_format])
    assert output.format == PILLOW_NAME[output_format]
    assert output.size == (result.width, result.height) == upright_size(data)
    assert result.quality == 50
    assert result.score is None


@pytest.mark.parametrize("quality", [50, "auto"])
@pytest.mark.parametrize("output_format", ["webp", "avif"])
@pytest.mark.parametrize(
    ("make", "opaque"),
    [(images.rgba_png_with_transparency, images.BLUE), (images.palette_png_with_transparency, images.RED)],
    ids=["rgba png", "palette png"],
)
def test_webp_and_avif_keep_transparency(
    make: Callable[[], bytes], opaque: tuple, output_format: str, quality: int | str
) -> None:
    options = CompressionOptions(quality, format=output_format)  # type: ignore[arg-type]
    output = opened(compress(make(), options)).convert("RGBA")
    assert output.getpixel((8, 24))[3] == 0
    assert output.getpixel((56, 24))[3] == 255
    assert all(abs(a - b) <= 40 for a, b in zip(output.getpixel((56, 24))[:3], opaque, strict=True))


def test_jpeg_still_flattens_transparency_onto_white() -> None:
    output = opened(compress(images.rgba_png_with_transparency(), CompressionOptions(50)))
    assert output.mode == "RGB"
    assert all(value >= 240 for value in output.getpixel((8, 24)))


@pytest.mark.parametrize("quality", [50, "auto"])
@pytest.mark.parametrize("output_format", FORMATS)
def test_orientation_6_is_applied_in_every_format(output_format: str, quality: int | str) -> None:
    stored_width, stored_height = images.ORIENTATION_SIZE
    options = CompressionOptions(quality, format=output_format)  # type: ignore[arg-type]
    output = opened(compress(images.oriented_jpeg(6), options))
    assert output.size == (stored_height, stored_width)
    red, green, blue = output.convert("RGB").getpixel((stored_height - 3, 2))
    assert red > 180
    assert green < 80
    assert blue < 80
    assert output.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("output_format", FORMATS)
def test_quality_auto_stays_above_its_threshold_on_every_image(output_format: str) -> None:
    for case, make in (CORPUS | LARGE | PRODUCTS).items():
        auto = compress(make(), CompressionOptions("auto", format=output_format))  # type: ignore[arg-type]
        assert not auto.kept_original, case  # every source here is larger than its re-encode
        assert auto.quality in auto_quality.LADDER, case
        assert auto.score is not None, case
        assert auto.score >= THRESHOLD, (case, auto.quality, auto.score)


@pytest.mark.parametrize("output_format", FORMATS)
def test_quality_auto_is_strictly_smaller_than_jpeg_q50_on_most_product_images(output_format: str) -> None:
    """The threshold is the look JPEG q50 gives over 90 % of the bench set, so in every format auto is
    held against JPEG q50's bytes, the default output it replaces. Strictly: a tie (auto choosing
    q50, or a flat picture whose bytes do not depend on quality) does not count. The CMYK photo,
    below the threshold at q50, is the one expected to need more."""
    smaller = []
    for case, make in PRODUCTS.items():
        data = make()
        auto = compress(data, CompressionOptions("auto", format=output_format))  # type: ignore[arg-type]
        if len(auto.data) < len(compress(data, CompressionOptions(50)).data):
            smaller.append(case)
    assert len(smaller) >= 0.8 * len(PRODUCTS), smaller


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_quality_auto_on_small_pictures_is_judged_on_the_whole_picture(output_format: str) -> None:
    """Below auto_quality.WHOLE_PICTURE_PIXELS the score is the whole picture's, not a sample's."""
    for case, make in CORPUS.items():
        data = make()
        auto = compress(data, CompressionOptions("auto", format=output_format))  # type: ignore[arg-type]
        assert full_ssim(data, auto) == pytest.approx(auto.score), case


def test_quality_auto_on_a_large_picture_reports_the_score_of_its_real_output() -> None:
    data = LARGE["large cut-out"]()
    auto = compress(data, CompressionOptions("auto", format="webp"))
    boxes = auto_quality.tile_boxes(auto.width, auto.height)
    assert len(boxes) == auto_quality.GRID**2
    with Image.open(BytesIO(data)) as source:
        reference = auto_quality.luma(auto_quality.mosaic(prepared(source, "webp"), boxes))
    measured = auto_quality.ssim(reference, auto_quality.luma(auto_quality.mosaic(opened(auto), boxes)))
    assert auto.score == pytest.approx(measured)


def test_the_search_tries_at_most_four_qualities_and_finds_the_lowest_passing() -> None:
    for lowest in auto_quality.LADDER:
        tried: list[int] = []

        def score_at(quality: int, lowest: int = lowest, tried: list[int] = tried) -> float:
            tried.append(quality)
            return 0.99 if quality >= lowest else 0.5

        choice = auto_quality.lowest_passing(score_at, 0.9)
        assert choice.quality == lowest
        assert len(tried) == choice.trials <= 4


@pytest.mark.parametrize(
    ("passes_from", "expected", "tried"),
    [
        (50, 50, [50]),  # the real output passes where the proxy did: one encode
        (52, 52, [50, 52]),  # just short: one rung up
        (55, 55, [50, 52, 55]),
        (60, 55, [50, 52, 55]),  # bounded: at most MAX_STEPS_UP more encodes, the last one kept
    ],
)
def test_a_real_output_under_the_threshold_is_encoded_a_rung_higher_a_bounded_number_of_times(
    passes_from: int, expected: int, tried: list[int]
) -> None:
    seen: list[int] = []

    def score_at(quality: int) -> float:
        seen.append(quality)
        return 0.9 if quality >= passes_from else 0.8

    quality, score = auto_quality.confirmed(50, score_at, 0.85)
    assert (quality, seen) == (expected, tried)
    assert score == (0.9 if expected >= passes_from else 0.8)
    assert len(seen) <= 1 + auto_quality.MAX_STEPS_UP


def test_the_top_of_the_ladder_is_kept_when_even_it_falls_short() -> None:
    assert auto_quality.confirmed(95, lambda quality: 0.5, 0.9) == (95, 0.5)


def test_when_nothing_passes_the_search_answers_the_top_quality_untried() -> None:
    choice = auto_quality.lowest_passing(lambda quality: 0.1, 0.9)
    assert (choice.quality, choice.score) == (auto_quality.LADDER[-1], None)


def test_ssim_is_one_for_equal_pictures_and_refuses_different_sizes() -> None:
    picture = Image.open(BytesIO(images.photo_jpeg(64, 48)))
    luma = auto_quality.luma(picture)
    assert auto_quality.ssim(luma, luma) == pytest.approx(1.0)
    assert auto_quality.ssim(luma, 255 - luma) < 0.2
    with pytest.raises(ValueError, match="sizes differ"):
        auto_quality.ssim(luma, luma[:-1])


def test_a_small_jpeg_is_kept_as_jpeg_when_webp_would_be_larger() -> None:
    data = images.jpeg_at_quality_30()
    result = compress(data, CompressionOptions(95, format="webp"))
    assert result.kept_original
    assert result.data == data
    assert (result.format, result.content_type, result.quality) == ("jpeg", "image/jpeg", None)


def test_a_small_webp_is_kept_when_webp_is_asked_and_a_png_never_is() -> None:
    data = images.webp()
    kept = compress(data, CompressionOptions(95, format="webp"))
    assert kept.kept_original
    assert kept.format == "webp"
    png = images.gray8_png()
    assert not compress(png, CompressionOptions(95, format="webp")).kept_original


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize(
    ("make", "code"),
    [
        (images.truncated_jpeg, "truncated_image"),
        (images.html_bytes, "not_an_image"),
        (images.eps_bytes, "unsupported_image"),
        (lambda: images.decompression_bomb_png(8000, 8000), "decompression_bomb"),
    ],
    ids=["truncated", "html", "eps", "bomb"],
)
def test_new_formats_fail_with_the_same_reason_codes(
    make: Callable[[], bytes], code: str, output_format: str
) -> None:
    options = CompressionOptions("auto", max_pixels=10_000_000, format=output_format)  # type: ignore[arg-type]
    with pytest.raises(ImageRejected) as caught:
        compress(make(), options)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "options",
    [
        {"quality": 0},
        {"quality": 96},
        {"quality": "best"},
        {"format": "gif"},
        {"auto_threshold": 1.0},
    ],
)
def test_options_out_of_range_are_refused(options: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        CompressionOptions(**options)
