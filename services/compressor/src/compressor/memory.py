"""Bounding the memory that images being compressed take, and giving it back afterwards.

A member's memory is mostly the images it works on: the downloaded bytes and, far more, the
decoded pixels (a 60 MP image is 240 MB once decoded, from a file of a few hundred KB). The
count of images in flight does not bound that, so compression also takes its share of a byte
budget first: the downloaded size plus the working size its header announces. Over the budget,
an image waits (it does not fail) until earlier ones finish; one image larger than the whole
budget still runs, alone. After a large image, the memory it used is handed back to the OS:
otherwise the allocator keeps it and the member stays at its peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import io
from collections import deque
from collections.abc import Awaitable, Callable

import structlog
from PIL import Image

from .compression import CompressedImage, CompressionOptions

log = structlog.get_logger(__name__)

Compress = Callable[[bytes, CompressionOptions], Awaitable[CompressedImage]]


def admits(in_use: int, cost: int, limit: int) -> bool:
    """Whether work of `cost` bytes may start now: it fits, or nothing else is running."""
    return in_use == 0 or in_use + cost <= limit


class ByteBudget:
    """Bytes handed out first come, first served; `acquire` waits while they would exceed `limit`.

    First come, first served: a large image is not overtaken forever by small ones that fit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for _, fut in self._waiters if not fut.done())

    async def acquire(self, cost: int) -> None:
        if not self.waiting and admits(self.in_use, cost, self.limit):
            self.in_use += cost
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((cost, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(cost)  # granted just as the caller gave up: hand it on
            else:
                self._grant()  # those behind it may fit now
            raise

    def release(self, cost: int) -> None:
        self.in_use -= cost
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            cost, granted = self._waiters[0]
            if granted.done():  # its caller was cancelled
                self._waiters.popleft()
                continue
            if not admits(self.in_use, cost, self.limit):
                return
            self._waiters.popleft()
            self.in_use += cost
            granted.set_result(None)


def working_size(data: bytes) -> int:
    """Bytes compressing this image holds at its peak, from the header alone (0 if unreadable).

    Pillow keeps 1 byte per pixel for 1, L and P, 2 for 16-bit gray and 4 for every other mode
    (RGB included). A gray or RGB image is held once more (turned upright, or while encoding);
    any other mode is converted to RGB(A) and flattened onto a new background: two 4-byte
    copies. Measured: 48 RGBA images of 49 MP within a budget of decoded sizes alone took a
    member to 1.3 GB, three times the budget.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            mode = image.mode
    except Exception:  # noqa: BLE001 - not an image: compression says why; it decodes nothing
        return 0
    pixels = width * height
    if mode in ("1", "L", "RGB"):
        return 2 * pixels * (4 if mode == "RGB" else 1)
    decoded = pixels * (1 if mode == "P" else 2 if mode.startswith("I;16") else 4)
    return decoded + 2 * pixels * 4


async def working_size_off_loop(data: bytes) -> int:
    """`working_size` in a thread: parsing a header can take a while for a hostile file."""
    return await asyncio.to_thread(working_size, data)


def _malloc_trim() -> Callable[[int], int] | None:
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL(path).malloc_trim  # glibc only
        return trim
    return None


_TRIM = _malloc_trim()


def release_memory() -> bool:
    """Hand freed memory back to the OS: Pillow's cached blocks, then glibc's free pages.

    Blocking (it walks every malloc arena): run it off the event loop. True if glibc trimmed.
    """
    Image.core.clear_cache(0)
    return _TRIM is not None and _TRIM(0) == 1


class BudgetedCompress:
    """A `Compress` that takes its share of the byte budget first and may release memory after.

    Memory goes back to the OS once the member is idle after a large image, not right after it:
    while other images are in flight they reuse the freed blocks at once, and handing them back
    only made the next decodes fault every page in again (the bench's member, 5 large images in
    500: page faults of its Pillow threads 265-324 -> 82-92 per image, its system CPU 2.9-3.9 ->
    1.7-1.9 ms per image). The peak is bounded by the budget either way; what the trim lowers is
    the footprint at rest.
    """

    def __init__(
        self,
        compress: Compress,
        budget: ByteBudget,
        trim_after: int,
        *,
        estimate: Callable[[bytes], Awaitable[int]] = working_size_off_loop,
        trim: Callable[[], object] = release_memory,
    ) -> None:
        self._compress = compress
        self._budget = budget
        self._trim_after = trim_after
        self._estimate = estimate
        self._trim = trim
        self._trim_due = False  # a large image finished since the last trim
        self.trimming: asyncio.Future[object] | None = None  # one at a time: it walks every arena

    async def __call__(self, data: bytes, options: CompressionOptions) -> CompressedImage:
        cost = len(data) + await self._estimate(data)
        await self._budget.acquire(cost)
        work = asyncio.ensure_future(self._compress(data, options))
        # The bytes are free when the work ends, not when a caller stops waiting for it (a
        # timeout cannot stop a Pillow thread): hence the callback and the shield.
        work.add_done_callback(lambda done: self._finished(done, cost))
        return await asyncio.shield(work)

    def _finished(self, work: asyncio.Future[CompressedImage], cost: int) -> None:
        if not work.cancelled():
            work.exception()  # retrieved here when its caller is gone
        self._budget.release(cost)  # may start waiting work: then the member is not idle
        if self._trim_after and cost >= self._trim_after:
            self._trim_due = True
        if self._trim_due and self._budget.in_use == 0 and (self.trimming is None or self.trimming.done()):
            self._trim_due = False
            log.debug("memory.release")
            self.trimming = asyncio.get_running_loop().run_in_executor(None, self._trim)
