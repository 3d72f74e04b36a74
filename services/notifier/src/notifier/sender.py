"""Sending one signed webhook over HTTP through the outbound address guard."""

from __future__ import annotations

import time
from dataclasses import dataclass

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


def create_session(guard: AddressGuard, timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=guarded_connector(guard, limit=100),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
    )


class AiohttpWebhookSender:
    def __init__(self, session: aiohttp.ClientSession, guard: AddressGuard) -> None:
        self._session = session
        self._guard = guard

    async def send(self, url: str, secret: str, message_id: str, body: bytes) -> Answer:
        started = time.monotonic()
        headers = signature_headers(secret, message_id, int(time.time()), body)
        try:
            check_url_host(url, self._guard)
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                return Answer(resp.status, None, _ms(started), _retry_after(resp.headers.get("Retry-After")))
        except AddressRefused as exc:
            return Answer(None, f"address_refused: {exc}", _ms(started), permanent=True)
        except TimeoutError:
            return Answer(None, "timeout", _ms(started))
        except aiohttp.ClientError as exc:
            return Answer(None, f"connection_error: {type(exc).__name__}", _ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 86_400.0) if value else None
    except ValueError:
        return None
