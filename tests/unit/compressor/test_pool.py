"""Pillow's process pool: rejections come back intact, a dead worker is a transient failure."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import pytest
from compressor.app import PillowPool
from compressor.compression import CompressionOptions, ImageRejected
from compressor.handlers import TransientFailure

from tests.support import images
from tests.unit.compressor.pool_work import die, ignores_sigterm

Q50 = CompressionOptions(quality=50)


@pytest.fixture
async def stops():
    """Record SIGTERMs reaching this process through asyncio, as the service's stop handler would."""
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    loop.add_signal_handler(signal.SIGTERM, seen.append, signal.SIGTERM)
    yield seen
    loop.remove_signal_handler(signal.SIGTERM)


async def test_a_rejection_crosses_the_process_pool_with_its_code(stops):
    pool = PillowPool("process", 1)
    try:
        with pytest.raises(ImageRejected) as caught:
            await pool.compress(images.truncated_jpeg(), Q50)
        assert caught.value.code == "truncated_image"
        result = await pool.compress(images.rgba_png_with_transparency(), Q50)  # the pool still works
        assert (result.width, result.height) == (64, 48)
    finally:
        pool.shutdown()
    assert stops == []


async def test_a_worker_that_dies_is_a_transient_failure_and_the_pool_is_replaced(stops):
    pool = PillowPool("process", 1, work=die)
    try:
        with pytest.raises(TransientFailure) as caught:
            await pool.compress(b"x", Q50)
        assert caught.value.code == "worker_crashed"
        with pytest.raises(TransientFailure):  # a fresh pool, which this function kills again
            await pool.compress(b"x", Q50)
    finally:
        pool.shutdown()
    assert stops == []


async def test_workers_leave_sigterm_to_their_parent(stops):
    pool = PillowPool("process", 1, work=ignores_sigterm)
    try:
        assert await pool.compress(b"x", Q50) == "still here"
    finally:
        pool.shutdown()
    assert stops == []


async def test_the_thread_pool_gives_the_same_results():
    pool = PillowPool("thread", 2)
    try:
        result = await pool.compress(images.cmyk_jpeg(), Q50)
        assert (result.width, result.height) == (64, 48)
    finally:
        pool.shutdown()


def _os_thread_name(*_: object) -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="thread names are read from Linux's /proc")
async def test_pillow_threads_carry_their_name_where_the_os_shows_it():
    """How `make bench` tells a member's Pillow CPU from its own work (bench/pipeline_bench.py)."""
    pool = PillowPool("thread", 2, work=_os_thread_name)
    try:
        names = set(await asyncio.gather(*(pool.compress(b"", Q50) for _ in range(8))))
    finally:
        pool.shutdown()
    assert names
    assert names <= {"pillow_0", "pillow_1"}
    assert _os_thread_name() != "pillow_0"  # the caller's own thread keeps its name
