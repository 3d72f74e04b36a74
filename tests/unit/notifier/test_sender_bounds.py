"""A subscriber's answer is read only up to the excerpt size (issue 12, defect 3).

Real aiohttp servers on 127.0.0.1 answer 200 with an endless body and with a declared 400 MB
body; the sender must come back with the status, a bounded excerpt, and must have dropped the
connection long before the server could send what it offered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.unit.notifier.sending import send_once

CHUNK = b"x" * 65536
OFFERED_CHUNKS = 16_384  # 1 GiB: far more than any sender that stops early would ever see
EXCERPT = 4096


@dataclass
class Streamer:
    """Writes CHUNK until the client goes away (or OFFERED_CHUNKS are out); counts what it sent."""

    declared_length: int | None = None
    sent: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        if self.declared_length is not None:
            response.content_length = self.declared_length
        await response.prepare(request)
        try:
            for _ in range(OFFERED_CHUNKS):
                await response.write(CHUNK)
                self.sent += len(CHUNK)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


async def send(url: str):
    return await send_once(url, timeout=10, excerpt_bytes=EXCERPT)


@pytest.mark.parametrize("declared", [None, 400 * 1024 * 1024], ids=["endless", "400MB"])
async def test_a_huge_answer_is_delivered_with_a_bounded_excerpt(subscriber, declared):
    streamer = Streamer(declared_length=declared)
    subscriber.routes["hook"] = streamer
    answer = await send(subscriber.url("hook"))
    assert (answer.status_code, answer.error) == (200, None)
    assert answer.excerpt is not None
    assert 0 < len(answer.excerpt.encode()) <= EXCERPT
    await asyncio.wait_for(streamer.disconnected.wait(), 10)
    # The client hung up: what the server got out is socket buffers, not the gigabyte it offered.
    assert streamer.sent < 64 * 1024 * 1024


async def test_a_short_answer_is_kept_whole_and_nuls_never_reach_the_log(subscriber):
    async def short(_: web.Request) -> web.Response:
        return web.Response(status=410, body=b"gone\x00 for good \xff")

    subscriber.routes["hook"] = short
    answer = await send(subscriber.url("hook"))
    assert answer.status_code == 410
    assert answer.excerpt == "gone for good \ufffd"


async def test_an_empty_answer_has_no_excerpt(subscriber):
    subscriber.files["hook"] = b""
    answer = await send(subscriber.url("hook"))
    assert (answer.status_code, answer.excerpt) == (200, None)
