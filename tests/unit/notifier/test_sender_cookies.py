"""One session delivers every tenant's webhooks: a cookie an endpoint sets is never sent back."""

from __future__ import annotations

from aiohttp import web
from notifier.sender import AiohttpWebhookSender, create_session
from notifier.signing import new_secret
from pipeline_runtime.netguard import AddressGuard


async def test_a_cookie_a_webhook_endpoint_sets_is_never_sent_with_a_later_delivery():
    cookies: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie", ""))
        response = web.Response(text="ok")
        response.set_cookie("session", "tenant-a-secret")
        return response

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    guard = AddressGuard.from_setting("127.0.0.1/32")
    session = create_session(guard, 3.0)
    try:
        sender = AiohttpWebhookSender(session, guard)
        # By name (/etc/hosts): aiohttp's default jar would keep no cookie for an IP address.
        for message in ("msg_a", "msg_b"):  # two tenants' deliveries to one host
            answer = await sender.send(f"http://localhost:{port}/hook", [new_secret()], message, b"{}")
            assert answer.status_code == 200
    finally:
        await session.close()
        await runner.cleanup()
    assert cookies == ["", ""]
