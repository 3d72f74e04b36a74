"""Calling the tracker API for the gateway: the two pooled clients, the target URLs, the relayed answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pipeline_runtime.httpkit import problem
from starlette.types import Receive, Scope, Send

from ..config import Settings
from .streams import StreamSlot

log = structlog.get_logger(__name__)

# connect/pool: the tracker is near, so a slow connect means it is down. read: the event stream
# sends a keep-alive every 15 s, so 30 s without a byte means the stream is dead.
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
KEEPALIVE_READ_CONNECTIONS = 20
# What the tracker is told of the caller's request, and what the caller is told of the answer.
FORWARDED_REQUEST_HEADERS = ("authorization", "accept", "if-none-match", "if-modified-since", "range")
FORWARDED_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "content-encoding",
    "content-disposition",
    "content-range",
    "accept-ranges",
    "cache-control",
    "etag",
    "last-modified",
    "retry-after",
    "www-authenticate",
    "x-accel-buffering",
)
MAX_MEDIA_PATH = 1024


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The HTTP clients are made on first use; whatever was made is closed at shutdown."""
    try:
        yield
    finally:
        for name in ("gateway_client", "gateway_stream_client"):
            client: httpx.AsyncClient | None = getattr(app.state, name, None)
            if client is not None:
                setattr(app.state, name, None)
                await client.aclose()


def tracker_client(request: Request, *, streams: bool = False) -> httpx.AsyncClient:
    """The pooled client for plain reads, or the one for streams; tests may set their own in app.state."""
    state = request.app.state
    name = "gateway_stream_client" if streams else "gateway_client"
    client: httpx.AsyncClient | None = getattr(state, name, None)
    if client is None:
        settings = settings_of(request)
        if streams:  # every stream slot finds a connection: no stream ever waits on the pool
            limits = httpx.Limits(max_connections=settings.gateway_max_streams, max_keepalive_connections=0)
        else:
            limits = httpx.Limits(
                max_connections=settings.gateway_read_connections,
                max_keepalive_connections=KEEPALIVE_READ_CONNECTIONS,
            )
        # No base_url: every target is an absolute URL built by tracker_url() below.
        client = httpx.AsyncClient(timeout=TIMEOUT, limits=limits, follow_redirects=False, trust_env=False)
        setattr(state, name, client)
    return client


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def tracker_url(
    settings: Settings, segments: Iterable[str], params: dict[str, Any] | None = None
) -> httpx.URL:
    """The tracker API's base URL with these path segments (each percent-quoted) appended."""
    base = httpx.URL(settings.status_base_url)
    path = base.path.rstrip("/") + "".join("/" + quote(s, safe="") for s in segments)
    target = base.copy_with(path=path, params={k: v for k, v in (params or {}).items() if v is not None})
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise ValueError("the target left the tracker API")  # cannot happen: quoted segments
    return target


def media_segments(path: str) -> list[str] | None:
    """The segments of a /media path, or None for anything that is not a plain relative file path."""
    if not path or len(path) > MAX_MEDIA_PATH or "\\" in path or "\x00" in path:
        return None
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return None
    return segments


async def forward(request: Request, target: httpx.URL, *, slot: StreamSlot | None = None) -> Response:
    """GET `target` with the caller's credentials and stream the answer back as it arrives.

    A stream's `slot` is given back when its answer ends, however it ends.
    """
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    headers["accept-encoding"] = "identity"  # bodies are relayed byte for byte (raw), never decoded
    client = tracker_client(request, streams=slot is not None)
    try:
        upstream = await client.send(client.build_request("GET", target, headers=headers), stream=True)
    except httpx.TimeoutException as exc:
        release(slot)
        log.warning("gateway.timeout", path=target.path, error=repr(exc))
        return problem(504, "gateway-timeout", "Gateway timeout", "the tracker API did not answer in time")
    except httpx.HTTPError as exc:
        release(slot)
        log.warning("gateway.unreachable", path=target.path, error=repr(exc))
        detail = "the tracker API is unreachable; retry later"
        return problem(502, "bad-gateway", "Bad gateway", detail, headers={"retry-after": "5"})
    passed = {name: upstream.headers[name] for name in FORWARDED_RESPONSE_HEADERS if name in upstream.headers}
    on_end = slot.release if slot is not None else None
    return RelayedResponse(relay(upstream), status_code=upstream.status_code, headers=passed, on_end=on_end)


def release(slot: StreamSlot | None) -> None:
    if slot is not None:
        slot.release()


class RelayedResponse(StreamingResponse):
    """A streamed answer that always closes its body (so the upstream connection) and runs `on_end`.

    When the caller goes away, Starlette cancels the send loop, which may leave the body generator
    suspended at a `yield` (not closed until garbage collection): closed here at once instead.
    """

    def __init__(self, content: AsyncIterator[bytes], *, on_end: Callable[[], None] | None, **kwargs: Any):
        super().__init__(content, **kwargs)
        self._body = content
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()  # type: ignore[attr-defined]  # an async generator's
            if self._on_end is not None:
                self._on_end()


async def relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body chunk by chunk; the upstream connection is released however this ends."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # the answer has started: all we can do is end it
        log.warning("gateway.stream_broken", path=upstream.request.url.path, error=repr(exc))
    finally:
        with anyio.CancelScope(shield=True):  # the caller may have gone: close all the same
            await upstream.aclose()
