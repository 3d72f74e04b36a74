"""Sending one signed webhook over HTTP through the outbound address guard.

Only the first few KiB of a subscriber's answer are read, for the delivery log: the rest is
never buffered, and the connection is dropped rather than drained, so an endless or huge body
costs a bounded amount of memory and time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from pipeline_runtime.netguard import (
    AddressGuard,
    AddressRefused,
    check_url_host,
    guarded_connector,
)

from .signing import signature_headers


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    latency_ms: float
    retry_after: float | None = None
    permanent: bool = False  # an answer that no retry can change (a refused address)
    excerpt: str | None = None  # the start of the answer's body, at most excerpt_bytes of it


class WebhookSender(Protocol):
    async def send(self, url: str, secrets: Sequence[str], message_id: str, body: bytes) -> Answer: ...


def create_session(guard: AddressGuard, timeout: float) -> aiohttp.ClientSession:
    # auto_decompress=False: a gzip bomb stays a few compressed KiB; the excerpt is raw bytes.
    # No cookie jar: one session delivers every tenant's webhooks, and a cookie one tenant's
    # endpoint set must not go back to that host with another tenant's delivery.
    return aiohttp.ClientSession(
        connector=guarded_connector(guard, limit=100),
        trust_env=False,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
    )


class AiohttpWebhookSender:
    def __init__(
        self, session: aiohttp.ClientSession, guard: AddressGuard, excerpt_bytes: int = 4096
    ) -> None:
        self._session = session
        self._guard = guard
        self._excerpt_bytes = excerpt_bytes

    async def send(self, url: str, secrets: Sequence[str], message_id: str, body: bytes) -> Answer:
        started = time.monotonic()
        headers = signature_headers(secrets, message_id, int(time.time()), body)
        headers["accept-encoding"] = "identity"
        try:
            check_url_host(url, self._guard)
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                head = await read_at_most(resp, self._excerpt_bytes)
                return Answer(
                    resp.status,
                    None,
                    _ms(started),
                    _retry_after(resp.headers.get("Retry-After")),
                    excerpt=excerpt_text(head),
                )
        except AddressRefused as exc:
            return Answer(None, f"address_refused: {exc}", _ms(started), permanent=True)
        except TimeoutError:
            return Answer(None, "timeout", _ms(started))
        except aiohttp.ClientError as exc:
            return Answer(None, f"connection_error: {type(exc).__name__}", _ms(started))


async def read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first `limit` bytes of the body; the connection is closed if more were on the way.

    Each read returns at least one byte or ends the loop, so it runs at most `limit` times; the
    session's total timeout bounds it in time.
    """
    head = bytearray()
    while len(head) < limit:
        chunk = await resp.content.read(limit - len(head))
        if not chunk:
            break
        head += chunk
    if not resp.content.at_eof():
        resp.close()  # drop the connection instead of draining (or buffering) the rest
    return bytes(head)


def excerpt_text(head: bytes) -> str | None:
    """Text PostgreSQL can store: invalid UTF-8 replaced, NUL characters removed."""
    if not head:
        return None
    return head.decode("utf-8", errors="replace").replace("\x00", "")


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 86_400.0) if value else None
    except ValueError:
        return None
