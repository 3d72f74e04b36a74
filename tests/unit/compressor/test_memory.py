"""The byte budget of images in flight, the decoded-size estimate and giving memory back."""

from __future__ import annotations

import asyncio
import io

import pytest
from compressor.compression import CompressedImage, CompressionOptions
from compressor.memory import (
    BudgetedCompress,
    ByteBudget,
    admits,
    release_memory,
    working_size,
    working_size_off_loop,
)
from PIL import Image

from tests.support import images

MIB = 1024 * 1024
OPTIONS = CompressionOptions()


async def settle() -> None:
    """Let every task that can run, run (no clock involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


# --- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_use", "cost", "limit", "expected"),
    [
        (0, 10, 100, True),
        (90, 10, 100, True),  # exactly at the limit
        (91, 10, 100, False),
        (0, 500, 100, True),  # larger than the budget: alone
        (1, 500, 100, False),  # ... but only alone
    ],
)
def test_work_starts_when_it_fits_or_runs_alone(in_use, cost, limit, expected):
    assert admits(in_use, cost, limit) is expected


# --- the budget ----------------------------------------------------------------------------


async def test_over_the_budget_work_waits_and_starts_when_bytes_are_released():
    budget = ByteBudget(100)
    await budget.acquire(60)
    second = asyncio.create_task(budget.acquire(60))
    await settle()
    assert not second.done()
    assert (budget.in_use, budget.waiting) == (60, 1)
    budget.release(60)
    await settle()
    assert second.done()
    assert second.exception() is None
    assert (budget.in_use, budget.waiting) == (60, 0)


async def test_one_image_larger_than_the_budget_runs_alone():
    budget = ByteBudget(100)
    await budget.acquire(500)  # nothing else running: allowed
    small = asyncio.create_task(budget.acquire(1))
    await settle()
    assert not small.done()
    budget.release(500)
    await settle()
    assert small.done()
    big = asyncio.create_task(budget.acquire(500))
    await settle()
    assert not big.done()  # 1 byte in use: the big one waits for it
    budget.release(1)
    await settle()
    assert big.done()
    assert budget.in_use == 500


async def test_first_come_first_served_a_large_waiter_is_not_overtaken_by_small_ones():
    budget = ByteBudget(100)
    await budget.acquire(50)
    large = asyncio.create_task(budget.acquire(80))
    await settle()
    small = asyncio.create_task(budget.acquire(10))  # would fit, but the large one came first
    await settle()
    assert not large.done()
    assert not small.done()
    budget.release(50)
    await settle()
    assert large.done()
    assert small.done()
    assert budget.in_use == 90


async def test_a_cancelled_waiter_takes_nothing_and_lets_the_next_one_in():
    budget = ByteBudget(100)
    await budget.acquire(50)
    large = asyncio.create_task(budget.acquire(80))
    await settle()
    small = asyncio.create_task(budget.acquire(40))
    await settle()
    large.cancel()
    await settle()
    assert large.cancelled()
    assert small.done()  # 50 + 40 fits once the large one is gone
    assert (budget.in_use, budget.waiting) == (90, 0)


# --- the estimate --------------------------------------------------------------------------


def png(width: int, height: int, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "size"),
    [
        ("L", 2 * 1),  # decoded, and one copy (upright or being encoded)
        ("RGB", 2 * 4),  # Pillow holds RGB in 4 bytes per pixel
        ("P", 1 + 2 * 4),  # decoded, then converted to RGB(A) and flattened: two 4-byte copies
        ("I;16", 2 + 2 * 4),
        ("RGBA", 4 + 2 * 4),
    ],
)
def test_the_working_size_comes_from_the_header(mode, size):
    assert working_size(png(300, 200, mode)) == 300 * 200 * size


def test_a_small_file_announcing_many_pixels_is_counted_at_its_working_size():
    data = images.photo_jpeg(2400, 1600, seed=1)
    assert len(data) < 2400 * 1600
    assert working_size(data) == 2400 * 1600 * 4 * 2


async def test_the_estimate_is_made_off_the_event_loop():
    assert await working_size_off_loop(png(30, 20, "RGB")) == 30 * 20 * 4 * 2


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n broken"])
def test_what_is_not_an_image_has_no_working_size(data):
    assert working_size(data) == 0


def test_memory_is_given_back_to_the_os_with_glibc():
    assert release_memory() is True  # the members run on glibc (Linux); elsewhere it is a no-op


# --- compression within the budget ----------------------------------------------------------


class GatedCompress:
    """A compression that finishes only when the test says so; records what ran at once."""

    def __init__(self) -> None:
        self.started: list[bytes] = []
        self.gates: dict[bytes, asyncio.Event] = {}
        self.failing: set[bytes] = set()

    async def __call__(self, data: bytes, options: CompressionOptions) -> CompressedImage:
        self.started.append(data)
        gate = self.gates.setdefault(data, asyncio.Event())
        await gate.wait()
        if data in self.failing:
            raise ValueError("broken image")
        return CompressedImage(data, 1, 1, "PNG", kept_original=False)

    def finish(self, data: bytes) -> None:
        self.gates.setdefault(data, asyncio.Event()).set()


def budgeted(work: GatedCompress, limit: int, trim_after: int = 0, trims: list[int] | None = None):
    sizes = {b"a": 40, b"b": 40, b"c": 40, b"huge": 1000}

    async def estimate(data: bytes) -> int:
        return sizes[data] - len(data)  # so that the cost is the table's size

    return BudgetedCompress(
        work,
        ByteBudget(limit),
        trim_after,
        estimate=estimate,
        trim=lambda: (trims if trims is not None else []).append(1),
    )


async def test_images_beyond_the_budget_wait_for_earlier_ones_and_then_run():
    work = GatedCompress()
    compress = budgeted(work, limit=100)
    tasks = [asyncio.create_task(compress(name, OPTIONS)) for name in (b"a", b"b", b"c")]
    await settle()
    assert work.started == [b"a", b"b"]  # 80 bytes; a third 40 would be 120
    work.finish(b"a")
    await settle()
    assert work.started == [b"a", b"b", b"c"]
    work.finish(b"b")
    work.finish(b"c")
    results = await asyncio.gather(*tasks)
    assert [r.data for r in results] == [b"a", b"b", b"c"]  # waited, none failed


async def test_a_failed_compression_gives_its_bytes_back():
    work = GatedCompress()
    work.failing.add(b"a")
    compress = budgeted(work, limit=50)
    first = asyncio.create_task(compress(b"a", OPTIONS))
    second = asyncio.create_task(compress(b"b", OPTIONS))
    await settle()
    assert work.started == [b"a"]
    work.finish(b"a")
    with pytest.raises(ValueError, match="broken"):
        await first
    await settle()
    assert work.started == [b"a", b"b"]
    work.finish(b"b")
    assert (await second).data == b"b"


async def test_bytes_stay_taken_until_the_work_ends_even_if_its_caller_gave_up():
    work = GatedCompress()
    compress = budgeted(work, limit=50)
    abandoned = asyncio.create_task(compress(b"a", OPTIONS))
    await settle()
    abandoned.cancel()  # e.g. a compress timeout: the Pillow thread goes on regardless
    await settle()
    later = asyncio.create_task(compress(b"b", OPTIONS))
    await settle()
    assert work.started == [b"a"]
    work.finish(b"a")
    await settle()
    assert work.started == [b"a", b"b"]
    work.finish(b"b")
    assert (await later).data == b"b"


async def test_memory_is_released_after_a_large_image_only():
    work, trims = GatedCompress(), []
    compress = budgeted(work, limit=100, trim_after=500, trims=trims)
    for name in (b"a", b"huge"):
        task = asyncio.create_task(compress(name, OPTIONS))
        await settle()
        work.finish(name)
        await task
        if compress.trimming is not None:
            await compress.trimming
        assert trims == ([1] if name == b"huge" else [])


async def test_after_a_large_image_memory_is_released_once_nothing_else_is_in_flight():
    work, trims = GatedCompress(), []
    compress = budgeted(work, limit=2000, trim_after=500, trims=trims)
    huge = asyncio.create_task(compress(b"huge", OPTIONS))
    small = asyncio.create_task(compress(b"a", OPTIONS))
    await settle()
    assert work.started == [b"huge", b"a"]
    work.finish(b"huge")
    await huge
    await settle()
    assert trims == []  # "a" would reuse what the huge image freed: kept while it runs
    work.finish(b"a")
    await small
    assert compress.trimming is not None
    await compress.trimming
    assert trims == [1]
    later = asyncio.create_task(compress(b"b", OPTIONS))  # small ones alone release nothing more
    await settle()
    work.finish(b"b")
    await later
    await settle()
    assert trims == [1]
