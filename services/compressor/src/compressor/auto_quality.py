"""quality=auto: the lowest quality whose output still looks like the input. Pure.

The measure is SSIM on luma (7x7 uniform windows, the constants of Wang et al. 2004) between
the picture as decoded and the encoded candidate decoded again. Trial encodes run on a proxy:
the whole picture when it is small, otherwise a mosaic of full-resolution tiles taken on a grid
across it. Tiles, not a downscale: shrinking a picture hides exactly the block and ringing
artefacts that quality decides, so a downscaled proxy would pick qualities that are too low.
Tile corners sit on multiples of 16, so JPEG and WebP blocks fall where they fall in the full
picture. A binary search over a ladder of 16 qualities makes 4 trial encodes; the real output
is scored again, and encoded a rung higher (at most twice) in the rare case it falls short.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

# 16 rungs, so a binary search makes exactly 4 trials. Dense from 44 to 65, where photos decide at
# this threshold (JPEG about 40-48, WebP 57-65): there SSIM rises only 0.002-0.005 per step of 5
# while the bytes grow 10-18 %, so coarse rungs would push a photo a whole step past what it
# needs. Below 30 smooth gradients band visibly while SSIM still reads 0.97 (measured on the
# corpus's cut-outs), so the search never goes there.
LADDER: tuple[int, ...] = (30, 35, 40, 44, 46, 48, 50, 52, 55, 58, 60, 62, 65, 70, 80, 95)
# The look JPEG q50, the pipeline's promise, gives over 90 % of the 500-image bench set: every RGB
# photo and cut-out (their q50 scores start at 0.845) and the best CMYK sources (0.831-0.840).
# quality=auto gives every image at least that, in any format, in as few bytes as it needs there.
# docs/api.md#output-formats-and-quality has the measured distribution and the decision.
DEFAULT_THRESHOLD = 0.840
TILE = 128
GRID = 4  # GRID x GRID tiles: a 512 x 512 mosaic
WHOLE_PICTURE_PIXELS = 1_000_000  # below this the picture is its own proxy
# Re-encodes of the whole picture when its real output scores under the threshold the proxy met.
MAX_STEPS_UP = 2
_WINDOW = 7
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


@dataclass(frozen=True)
class Choice:
    quality: int
    score: float | None  # the proxy's SSIM at `quality`; None when it was not tried
    trials: int


def tile_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Where the proxy's tiles come from; one box, the whole picture, when it is small."""
    if width * height <= WHOLE_PICTURE_PIXELS or width < GRID * TILE or height < GRID * TILE:
        return [(0, 0, width, height)]
    boxes = []
    for row in range(GRID):
        for column in range(GRID):
            left = _aligned((2 * column + 1) * width // (2 * GRID) - TILE // 2)
            top = _aligned((2 * row + 1) * height // (2 * GRID) - TILE // 2)
            boxes.append((left, top, left + TILE, top + TILE))
    return boxes


def _aligned(offset: int) -> int:
    return max(0, offset - offset % 16)


def mosaic(picture: Image.Image, boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    """The tiles of `boxes`, side by side in rows of GRID (the picture itself for one box)."""
    if len(boxes) == 1:
        return picture.crop(boxes[0]) if boxes[0] != (0, 0, *picture.size) else picture
    sheet = Image.new(picture.mode, (GRID * TILE, GRID * TILE))
    for index, box in enumerate(boxes):
        sheet.paste(picture.crop(box), ((index % GRID) * TILE, (index // GRID) * TILE))
    return sheet


def luma(picture: Image.Image) -> np.ndarray:
    """Gray levels as float64; transparent pixels are seen over white, as a page shows them."""
    if picture.has_transparency_data:
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", picture.size, "white")
        picture = Image.alpha_composite(background, rgba)
    return np.asarray(picture.convert("L"), dtype=np.float64)


def decoded_luma(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return luma(image)


def ssim(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean SSIM over every 7x7 window of two gray pictures of the same size."""
    if reference.shape != candidate.shape:
        raise ValueError(f"sizes differ: {reference.shape} and {candidate.shape}")
    if min(reference.shape) < _WINDOW:
        return 1.0 if np.array_equal(reference, candidate) else 0.0
    n = _WINDOW * _WINDOW
    unbiased = n / (n - 1)  # sample covariance, as scikit-image computes it
    mean_r, mean_c = _box_mean(reference), _box_mean(candidate)
    var_r = (_box_mean(reference * reference) - mean_r * mean_r) * unbiased
    var_c = (_box_mean(candidate * candidate) - mean_c * mean_c) * unbiased
    covariance = (_box_mean(reference * candidate) - mean_r * mean_c) * unbiased
    numerator = (2 * mean_r * mean_c + _C1) * (2 * covariance + _C2)
    denominator = (mean_r**2 + mean_c**2 + _C1) * (var_r + var_c + _C2)
    return float(np.mean(numerator / denominator))


def _box_mean(values: np.ndarray) -> np.ndarray:
    """Mean over each full 7x7 window, from a summed-area table."""
    table = np.pad(values, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    w = _WINDOW
    sums = table[w:, w:] - table[:-w, w:] - table[w:, :-w] + table[:-w, :-w]
    return sums / (w * w)


def lowest_passing(score_at: Callable[[int], float], threshold: float) -> Choice:
    """Binary search of LADDER for the lowest quality scoring at least `threshold`.

    Assumes the score rises with quality (it does for these encoders, up to noise). When no
    tried quality passes, the answer is the top of the ladder, which was not tried.
    """
    low, high = 0, len(LADDER) - 1
    scores: dict[int, float] = {}
    while low < high:
        middle = (low + high) // 2
        scores[middle] = score_at(LADDER[middle])
        if scores[middle] >= threshold:
            high = middle
        else:
            low = middle + 1
    return Choice(LADDER[low], scores.get(low), len(scores))


def confirmed(quality: int, score_at: Callable[[int], float], threshold: float) -> tuple[int, float]:
    """The quality whose real output passes, starting at the one the proxy chose.

    A tile encoded in the mosaic has other neighbours than in the picture (WebP and AVIF predict
    from them), so the real output can fall just short where its tile passed: then it is encoded
    one rung higher, at most MAX_STEPS_UP times. Returns the last quality tried and its score.
    """
    index = LADDER.index(quality)
    score = score_at(quality)
    for _ in range(MAX_STEPS_UP):
        if score >= threshold or index + 1 == len(LADDER):
            break
        index += 1
        score = score_at(LADDER[index])
    return LADDER[index], score
