"""One webhook sent by the real sender through a guard that admits only `allow` (loopback tests)."""

from __future__ import annotations

from notifier.sender import AiohttpWebhookSender, Answer, create_session
from notifier.signing import new_secret
from pipeline_runtime.netguard import AddressGuard


async def send_once(
    url: str, *, allow: str = "127.0.0.1/32", timeout: float = 3.0, excerpt_bytes: int = 4096
) -> Answer:
    guard = AddressGuard.from_setting(allow)
    session = create_session(guard, timeout)
    try:
        sender = AiohttpWebhookSender(session, guard, excerpt_bytes)
        return await sender.send(url, [new_secret()], "msg_1", b"{}")
    finally:
        await session.close()
