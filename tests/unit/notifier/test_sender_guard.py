"""Webhook targets pass the same address guard as image URLs (loopback only: 127.0.0.1 vs 127.0.0.2)."""

from __future__ import annotations

import pytest
from notifier.sender import AiohttpWebhookSender, create_session
from notifier.signing import new_secret
from pipeline_runtime.netguard import AddressGuard

from tests.support.servers import LocalServer


@pytest.fixture
async def allowed_server():
    server = LocalServer(host="127.0.0.1")
    server.files["hook"] = b"ok"
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def refused_server():
    server = LocalServer(host="127.0.0.2")  # loopback too, but outside the allowlist below
    server.files["hook"] = b"ok"
    await server.start()
    yield server
    await server.stop()


async def send(url: str):
    guard = AddressGuard.from_setting("127.0.0.1/32")
    session = create_session(guard, timeout=3)
    try:
        return await AiohttpWebhookSender(session, guard).send(url, new_secret(), "msg_1", b"{}")
    finally:
        await session.close()


async def test_a_target_inside_the_allowlist_is_delivered(allowed_server):
    answer = await send(allowed_server.url("hook"))
    assert answer.status_code == 200
    assert len(allowed_server.hits("hook")) == 1


async def test_a_target_outside_the_allowlist_is_refused_and_never_contacted(refused_server):
    answer = await send(refused_server.url("hook"))
    assert answer.status_code is None
    assert answer.error.startswith("address_refused")
    assert refused_server.received == []


async def test_a_hostname_resolving_to_a_refused_address_is_refused(refused_server):
    # `localhost` resolves to 127.0.0.1 (and ::1): both outside this allowlist, so the name is refused
    guard = AddressGuard.from_setting("127.0.0.2/32")
    session = create_session(guard, timeout=3)
    try:
        answer = await AiohttpWebhookSender(session, guard).send(
            f"http://localhost:{refused_server.port}/hook", new_secret(), "msg_1", b"{}"
        )
    finally:
        await session.close()
    assert answer.status_code is None
    assert answer.error.startswith("address_refused")
