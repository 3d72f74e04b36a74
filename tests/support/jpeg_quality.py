"""Estimate the IJG quality a JPEG was saved at, independently of the code under test."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

# ITU-T T.81 Annex K luminance table, in natural (row-major) order like Pillow's `quantization`.
IJG_LUMINANCE_BASE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def ijg_luminance_table(quality: int) -> list[int]:
    """The table libjpeg's jpeg_set_quality(quality, force_baseline=TRUE) writes."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (base * scale + 50) // 100)) for base in IJG_LUMINANCE_BASE]


def estimate_jpeg_quality(data: bytes) -> int:
    with Image.open(BytesIO(data)) as image:
        table = list(image.quantization[0])
    return min(
        range(1, 101),
        key=lambda quality: sum(
            abs(actual - expected)
            for actual, expected in zip(table, ijg_luminance_table(quality), strict=True)
        ),
    )
