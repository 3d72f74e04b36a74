"""One session delivers every tenant's webhooks: a cookie an endpoint sets is never sent back."""

from __future__ import annotations

from aiohttp import web
from notifier.sender import AiohttpWebhookSender, create_session
from notifier.signing import new_secret
from pipeline_runtime.netguard import AddressGuard

from tests.support.servers import serving


async def sets_a_cookie(_: web.Request) -> web.Response:
    response = web.Response(text="ok")
    response.set_cookie("session", "tenant-a-secret")
    return response


async def test_a_cookie_a_webhook_endpoint_sets_is_never_sent_with_a_later_delivery():
    guard = AddressGuard.from_setting("127.0.0.1/32")
    session = create_session(guard, 3.0)
    try:
        async with serving(routes={"hook": sets_a_cookie}) as server:
            sender = AiohttpWebhookSender(session, guard)
            # By name (/etc/hosts): aiohttp's default jar would keep no cookie for an IP address.
            for message in ("msg_a", "msg_b"):  # two tenants' deliveries to one host
                answer = await sender.send(
                    f"http://localhost:{server.port}/hook", [new_secret()], message, b"{}"
                )
                assert answer.status_code == 200
    finally:
        await session.close()
    assert [r.headers.get("Cookie", "") for r in server.hits("hook")] == ["", ""]
