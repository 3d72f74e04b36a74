"""A subscriber answering an endless body: delivered, and the attempt log keeps a bounded excerpt.

The real dispatcher, sender and PostgreSQL repository, against an aiohttp server on 127.0.0.1
that streams until the client hangs up (issue 12, defect 3).
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.integration.notifier.support import new_delivery, new_request, real_dispatcher

pytestmark = pytest.mark.integration

EXCERPT = 4096
TIMEOUT = 5.0


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    await response.prepare(request)
    for _ in range(16_384):  # at most 1 GiB, should the client never hang up
        await response.write(b"y" * 65536)
    return response


async def test_an_endless_answer_is_delivered_and_its_logged_excerpt_is_bounded(pool, subscriber):
    subscriber.routes["hook"] = endless
    request_id = await new_request(pool, "t-endless")
    delivery_id = await new_delivery(pool, "t-endless", request_id, url=subscriber.url("hook"))
    async with real_dispatcher(pool, excerpt_bytes=EXCERPT, timeout=TIMEOUT) as dispatcher:
        assert await dispatcher.dispatch_due() == 1
        await asyncio.wait_for(dispatcher.drain(), TIMEOUT * 2)
    row = await pool.fetchrow(
        "SELECT d.status, a.status_code, a.error, octet_length(a.response_excerpt) AS excerpt"
        " FROM webhook_deliveries d JOIN webhook_attempts a USING (delivery_id) WHERE delivery_id = $1",
        delivery_id,
    )
    assert (row["status"], row["status_code"], row["error"]) == ("delivered", 200, None)
    assert 0 < row["excerpt"] <= EXCERPT
