"""Guarded, size- and time-limited HTTP(S) downloads of source images."""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from dataclasses import dataclass

import aiohttp
from pipeline_runtime.netguard import (
    AddressGuard,
    AddressRefused,
    check_url_host,
    guarded_connector,
)
from pipeline_runtime.urls import MAX_HOST_LABEL, host_label_too_long
from yarl import URL

__all__ = [
    "AiohttpDownloader",
    "DownloadError",
    "DownloadLimits",
    "create_session",
    "parse_retry_after",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ALLOWED_SCHEMES = frozenset({"http", "https"})
RETRY_AFTER_CAP = 300.0


@dataclass(frozen=True)
class DownloadLimits:
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5


class DownloadError(Exception):
    """A download failed; ``code`` is a stable reason code, ``transient`` says if a retry may help.

    Codes: ``address_refused``, ``too_many_redirects``, ``too_large``, ``http_error``,
    ``bad_url`` (permanent); ``rate_limited``, ``server_error``, ``timeout``,
    ``connection_error`` (transient).
    """

    def __init__(self, code: str, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"DownloadError(code={self.code!r}, message={self.message!r}, "
            f"transient={self.transient}, retry_after={self.retry_after})"
        )


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float = RETRY_AFTER_CAP
) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), capped at ``cap``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        current = time.time() if now is None else now
        seconds = when.timestamp() - current
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def _request_timeout(limits: DownloadLimits) -> aiohttp.ClientTimeout:
    # sock_connect (not connect) so that waiting for a free pooled connection under load
    # counts only against the total budget, not the connect budget.
    return aiohttp.ClientTimeout(total=limits.total_timeout, sock_connect=limits.connect_timeout)


def create_session(
    guard: AddressGuard, limits: DownloadLimits, *, max_connections: int = 64
) -> aiohttp.ClientSession:
    """A session whose connector resolves names through the guard. Call inside a running loop.

    No cookie jar: one session downloads every tenant's images, and a cookie an image host set
    while serving one tenant must not go back to it with another tenant's download.
    """
    return aiohttp.ClientSession(
        connector=guarded_connector(guard, limit=max_connections),
        timeout=_request_timeout(limits),
        trust_env=False,  # never route through environment proxies, which bypass the guard
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class AiohttpDownloader:
    """Fetches one URL into memory, following at most ``max_redirects`` checked redirects."""

    def __init__(self, session: aiohttp.ClientSession, guard: AddressGuard, limits: DownloadLimits) -> None:
        self._session = session
        self._guard = guard
        self._limits = limits
        self._timeout = _request_timeout(limits)

    async def fetch(self, url: str) -> bytes:
        """Return the body of ``url`` or raise :class:`DownloadError`."""
        current = _parse_url(url)
        try:
            async with asyncio.timeout(self._limits.total_timeout):
                return await self._follow(current)
        except TimeoutError as exc:
            raise DownloadError(
                "timeout",
                f"download of {url} exceeded {self._limits.total_timeout}s",
                transient=True,
            ) from exc

    async def _follow(self, current: URL) -> bytes:
        redirects = 0
        while True:
            next_url = await self._hop(current)
            if isinstance(next_url, bytes):
                return next_url
            redirects += 1
            if redirects > self._limits.max_redirects:
                raise DownloadError(
                    "too_many_redirects",
                    f"more than {self._limits.max_redirects} redirects (last hop to {next_url})",
                    transient=False,
                )
            current = next_url

    async def _hop(self, url: URL) -> URL | bytes:
        """Perform one request: the body on success, or the next URL on a redirect."""
        try:
            check_url_host(url, self._guard)
            async with self._session.get(url, allow_redirects=False, timeout=self._timeout) as resp:
                if resp.status in REDIRECT_STATUSES:
                    return _redirect_target(url, resp)
                _raise_for_status(url, resp)
                return await self._read_body(url, resp)
        except DownloadError:
            raise
        except AddressRefused as exc:
            raise DownloadError("address_refused", f"{url}: {exc}", transient=False) from exc
        except TimeoutError as exc:
            raise DownloadError("timeout", f"{url}: timed out", transient=True) from exc
        except aiohttp.InvalidURL as exc:
            raise DownloadError("bad_url", f"{url}: invalid URL ({exc})", transient=False) from exc
        except UnicodeError as exc:  # the resolver's IDNA step: an empty or overlong label
            raise DownloadError(
                "bad_url", f"{url}: host name cannot be resolved ({exc})", transient=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):  # defensive: if aiohttp ever wraps it
                raise DownloadError("address_refused", f"{url}: {exc.os_error}", transient=False) from exc
            raise DownloadError("connection_error", f"{url}: {exc}", transient=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise DownloadError("connection_error", f"{url}: {detail}", transient=True) from exc

    async def _read_body(self, url: URL, resp: aiohttp.ClientResponse) -> bytes:
        max_bytes = self._limits.max_bytes
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit():
            if int(declared) > max_bytes:
                resp.close()  # drop the connection without reading the body
                raise DownloadError(
                    "too_large",
                    f"{url}: Content-Length {int(declared)} exceeds limit of {max_bytes} bytes",
                    transient=False,
                )
            if not resp.headers.get("Content-Encoding"):
                # aiohttp reads exactly the declared length (no more), in one buffer.
                return await resp.read()
        return await self._read_capped(url, resp, max_bytes)

    @staticmethod
    async def _read_capped(url: URL, resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
        """Stream a body of unknown length, cut off as soon as it passes `max_bytes`."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > max_bytes:
                resp.close()
                raise DownloadError(
                    "too_large",
                    f"{url}: body exceeds limit of {max_bytes} bytes",
                    transient=False,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _parse_url(raw: str | URL) -> URL:
    try:
        url = raw if isinstance(raw, URL) else URL(raw)
    except (ValueError, TypeError) as exc:
        raise DownloadError("bad_url", f"invalid URL {raw!r}: {exc}", transient=False) from exc
    if url.scheme not in ALLOWED_SCHEMES:
        raise DownloadError("bad_url", f"unsupported scheme {url.scheme!r} in {raw!s}", transient=False)
    if not url.raw_host:
        raise DownloadError("bad_url", f"URL {raw!s} has no host", transient=False)
    if url.raw_user is not None or url.raw_password is not None:
        # Never quoted: the message is logged and published. aiohttp would send them as Basic auth.
        raise DownloadError("bad_url", "URL must not contain credentials (user:password@)", transient=False)
    if host_label_too_long(url.raw_host):  # raw_host is the IDNA form a resolver would be given
        raise DownloadError(
            "bad_url", f"URL {raw!s} has a host name label over {MAX_HOST_LABEL} characters", transient=False
        )
    return url


def _redirect_target(current: URL, resp: aiohttp.ClientResponse) -> URL:
    location = resp.headers.get("Location")
    if not location:
        raise DownloadError(
            "http_error",
            f"{current}: HTTP {resp.status} redirect without Location",
            transient=False,
        )
    try:
        target = current.join(URL(location))
    except (ValueError, TypeError) as exc:
        raise DownloadError(
            "bad_url", f"{current}: invalid redirect Location {location!r}", transient=False
        ) from exc
    return _parse_url(target)


def _raise_for_status(url: URL, resp: aiohttp.ClientResponse) -> None:
    status = resp.status
    if 200 <= status < 300:
        return
    what = f"{url}: HTTP {status} {resp.reason or ''}".rstrip()
    if status == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        raise DownloadError("rate_limited", what, transient=True, retry_after=retry_after)
    if status == 408 or 500 <= status < 600:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        raise DownloadError("server_error", what, transient=True, retry_after=retry_after)
    raise DownloadError("http_error", what, transient=False)
