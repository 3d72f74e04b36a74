"""Webhook targets pass the same address guard as image URLs (loopback only: 127.0.0.1 vs 127.0.0.2)."""

from __future__ import annotations

import pytest

from tests.support.servers import serving
from tests.unit.notifier.sending import send_once


@pytest.fixture
async def allowed_server():
    async with serving({"hook": b"ok"}) as server:
        yield server


@pytest.fixture
async def refused_server():
    async with serving({"hook": b"ok"}, host="127.0.0.2") as server:  # loopback, outside the allowlist
        yield server


async def test_a_target_inside_the_allowlist_is_delivered(allowed_server):
    answer = await send_once(allowed_server.url("hook"))
    assert answer.status_code == 200
    assert len(allowed_server.hits("hook")) == 1


async def test_a_target_outside_the_allowlist_is_refused_and_never_contacted(refused_server):
    answer = await send_once(refused_server.url("hook"))
    assert answer.status_code is None
    assert answer.error.startswith("address_refused")
    assert refused_server.received == []


async def test_a_hostname_resolving_to_a_refused_address_is_refused(refused_server):
    # `localhost` resolves to 127.0.0.1 (and ::1): both outside this allowlist, so the name is refused
    answer = await send_once(f"http://localhost:{refused_server.port}/hook", allow="127.0.0.2/32")
    assert answer.status_code is None
    assert answer.error.startswith("address_refused")
