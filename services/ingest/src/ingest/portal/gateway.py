"""A read-only gateway to the tracker API, so that ingest is the one public HTTP entry.

The web page (served by ingest at `/`) reads status, images, the output CSV, the progress stream
and the compressed files through these routes. Each one forwards a GET to the tracker API at
`INGEST_STATUS_BASE_URL` and streams the answer back unchanged (status, body, the headers that
matter). The caller's `Authorization` header is passed through: the tracker API decides who may
read what. Targets are built from fixed path templates, validated ids and quoted path segments
on that base URL only, so no request can make ingest call any other host.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import anyio
import httpx
import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pipeline_runtime.httpkit import problem, problem_responses

from ..config import Settings

log = structlog.get_logger(__name__)

# connect/pool: the tracker is near, so a slow connect means it is down. read: the event stream
# sends a keep-alive every 15 s, so 30 s without a byte means the stream is dead.
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=20)
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
GATEWAY_ERRORS = (401, 403, 404, 422, 502, 503, 504)
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The HTTP client is made on first use; whatever was made is closed at shutdown."""
    try:
        yield
    finally:
        client: httpx.AsyncClient | None = getattr(app.state, "gateway_client", None)
        if client is not None:
            app.state.gateway_client = None
            await client.aclose()


router = APIRouter(lifespan=lifespan)


def tracker_client(request: Request) -> httpx.AsyncClient:
    """One pooled client per app; tests may set `app.state.gateway_client` to their own."""
    state = request.app.state
    client: httpx.AsyncClient | None = getattr(state, "gateway_client", None)
    if client is None:
        # No base_url: every target is an absolute URL built by tracker_url() below.
        client = httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS, follow_redirects=False, trust_env=False)
        state.gateway_client = client
    return client


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


async def forward(request: Request, target: httpx.URL) -> Response:
    """GET `target` with the caller's credentials and stream the answer back as it arrives."""
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    headers["accept-encoding"] = "identity"  # bodies are relayed byte for byte (raw), never decoded
    client = tracker_client(request)
    try:
        upstream = await client.send(client.build_request("GET", target, headers=headers), stream=True)
    except httpx.TimeoutException as exc:
        log.warning("gateway.timeout", path=target.path, error=repr(exc))
        return problem(504, "gateway-timeout", "Gateway timeout", "the tracker API did not answer in time")
    except httpx.HTTPError as exc:
        log.warning("gateway.unreachable", path=target.path, error=repr(exc))
        response = problem(502, "bad-gateway", "Bad gateway", "the tracker API is unreachable; retry later")
        response.headers["retry-after"] = "5"
        return response
    passed = {name: upstream.headers[name] for name in FORWARDED_RESPONSE_HEADERS if name in upstream.headers}
    return StreamingResponse(relay(upstream), status_code=upstream.status_code, headers=passed)


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


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


@router.get(
    "/status/{request_id}",
    response_class=Response,
    responses={200: {"description": "The tracker API's status answer.", "content": JSON_OBJECT}}
    | problem_responses(*GATEWAY_ERRORS),
)
async def status(request_id: UUID, request: Request) -> Response:
    """The request's status, read from the tracker API (same answer as its `GET /status/{request_id}`)."""
    return await forward(request, tracker_url(settings_of(request), ["status", str(request_id)]))


@router.get(
    "/requests/{request_id}/images",
    response_class=Response,
    responses={200: {"description": "One page of the request's images.", "content": JSON_OBJECT}}
    | problem_responses(*GATEWAY_ERRORS),
)
async def images(
    request_id: UUID,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="Images per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """The request's images, page by page, read from the tracker API (same answer and cursors)."""
    target = tracker_url(
        settings_of(request), ["requests", str(request_id), "images"], {"limit": limit, "cursor": cursor}
    )
    return await forward(request, target)


@router.get(
    "/requests/{request_id}/output.csv",
    response_class=Response,
    responses={
        200: {"description": "The output CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(409, *GATEWAY_ERRORS),
    },
)
async def output_csv(request_id: UUID, request: Request) -> Response:
    """The output CSV, read from the tracker API; 409 until the request is finished."""
    target = tracker_url(settings_of(request), ["requests", str(request_id), "output.csv"])
    return await forward(request, target)


@router.get(
    "/requests/{request_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `progress` with the status JSON on every change, then `done`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(*GATEWAY_ERRORS),
    },
)
async def events(request_id: UUID, request: Request) -> Response:
    """The request's progress as Server-Sent Events, relayed from the tracker API as they come."""
    target = tracker_url(settings_of(request), ["requests", str(request_id), "events"])
    return await forward(request, target)


@router.get("/media/{path:path}", include_in_schema=False)
async def media(path: str, request: Request) -> Response:
    """A compressed file, read from the tracker API's /media (not in the OpenAPI document, like there)."""
    segments = media_segments(path)
    if segments is None:
        return problem(404, "not-found", "Not Found", "no such file")
    return await forward(request, tracker_url(settings_of(request), ["media", *segments]))
