"""The read-only gateway from ingest to the tracker API, and the page it serves, with a fake tracker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from ingest.app import Resources, create_app
from ingest.config import Settings

from tests.support.keys import MemoryKeyStore

PROBLEM = "application/problem+json"
TRACKER = "http://tracker.internal:8001"
KEY = "imgp_test"
BEARER = {"Authorization": f"Bearer {KEY}"}


@dataclass
class FakeTracker:
    """Answers like the tracker API would and records what it was sent."""

    sent: list[httpx.Request] = field(default_factory=list)
    answers: dict[str, httpx.Response | Callable[[], httpx.Response]] = field(default_factory=dict)
    failure: Exception | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.failure is not None:
            raise self.failure
        for prefix, response in self.answers.items():
            if request.url.path.startswith(prefix):
                return response() if callable(response) else unread(response)
        echo = {"path": request.url.path, "query": str(request.url.query, "ascii")}
        return unread(httpx.Response(200, json=echo))


def unread(response: httpx.Response) -> httpx.Response:
    """A copy whose body is still to be streamed, as a response off the network is."""
    if isinstance(response.stream, httpx.AsyncByteStream) and not isinstance(
        response.stream, httpx.ByteStream
    ):
        return response  # a streaming body of the test's own
    return httpx.Response(
        response.status_code, headers=response.headers, stream=httpx.ByteStream(response.content)
    )


def keys_only(keys: MemoryKeyStore):
    """Resources with only a key store: the gateway keeps no data, it checks keys for streams."""

    @contextlib.asynccontextmanager
    async def resources(_settings: Settings):
        async def readiness() -> dict[str, bool]:
            return {"database": True, "kafka": True}

        unused: Any = None  # the gateway never touches the repository
        yield Resources(repository=unused, readiness=readiness, wake_relay=lambda: None, key_store=keys)

    return resources


@contextlib.asynccontextmanager
async def ingest_app(
    tracker: FakeTracker | None, base: str = TRACKER, keys: MemoryKeyStore | None = None, **settings
) -> AsyncIterator:
    if keys is None:
        keys = MemoryKeyStore()
        keys.add("default", "read", key=KEY)
    app = create_app(Settings(status_base_url=base, **settings), resources=keys_only(keys))
    async with LifespanManager(app) as manager:
        if tracker is not None:
            for name in ("gateway_client", "gateway_stream_client"):
                setattr(app.state, name, httpx.AsyncClient(transport=httpx.MockTransport(tracker.handle)))
        yield app, manager.app


@pytest.fixture
def tracker() -> FakeTracker:
    return FakeTracker()


@pytest.fixture
async def client(tracker):
    async with ingest_app(tracker) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test", headers=BEARER) as c:
            yield c


async def test_status_is_forwarded_to_the_tracker_with_the_key_and_answered_as_is(client, tracker):
    rid = uuid4()
    tracker.answers["/status/"] = httpx.Response(
        200,
        json={"request_id": str(rid), "status": "processing"},
        headers={"etag": '"7"', "set-cookie": "x=1"},
    )

    resp = await client.get(
        f"/status/{rid}", headers={"Cookie": "session=secret", "X-Forwarded-For": "1.2.3.4"}
    )

    assert resp.status_code == 200
    assert resp.json() == {"request_id": str(rid), "status": "processing"}
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["etag"] == '"7"'
    assert "set-cookie" not in resp.headers
    [sent] = tracker.sent
    assert str(sent.url) == f"{TRACKER}/status/{rid}"
    assert sent.method == "GET"
    assert sent.headers["authorization"] == BEARER["Authorization"]
    assert "cookie" not in sent.headers
    assert "x-forwarded-for" not in sent.headers


async def test_images_forward_only_limit_and_cursor_and_validate_them_first(client, tracker):
    rid = uuid4()

    ok = await client.get(f"/requests/{rid}/images", params={"limit": 5, "cursor": "Mjox", "evil": "1"})
    bad = await client.get(f"/requests/{rid}/images", params={"limit": 0})

    assert ok.status_code == 200
    assert ok.json() == {"path": f"/requests/{rid}/images", "query": "limit=5&cursor=Mjox"}
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM
    assert len(tracker.sent) == 1  # the invalid one never reached the tracker


async def test_a_malformed_request_id_is_refused_by_ingest(client, tracker):
    for path in ("/status/../../admin", "/status/not-a-uuid", "/requests/x/output.csv"):
        resp = await client.get(path)
        assert resp.status_code in (404, 422), path
    assert tracker.sent == []


async def test_the_output_csv_and_the_trackers_errors_pass_through_unchanged(client, tracker):
    rid, unfinished = uuid4(), uuid4()
    tracker.answers[f"/requests/{rid}/output.csv"] = httpx.Response(
        200,
        content=b"S. No.,Product Name\r\n",
        headers={
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": f'attachment; filename="{rid}.csv"',
        },
    )
    problem = {
        "type": "https://imgpipe.dev/problems/not-finished",
        "title": "t",
        "status": 409,
        "detail": "d",
    }
    tracker.answers[f"/requests/{unfinished}/output.csv"] = httpx.Response(
        409, json=problem, headers={"content-type": PROBLEM}
    )
    tracker.answers["/status/"] = httpx.Response(
        401, json={**problem, "status": 401}, headers={"content-type": PROBLEM, "www-authenticate": "Bearer"}
    )

    csv = await client.get(f"/requests/{rid}/output.csv")
    conflict = await client.get(f"/requests/{unfinished}/output.csv")
    refused = await client.get(f"/status/{rid}")

    assert (csv.status_code, csv.content) == (200, b"S. No.,Product Name\r\n")
    assert csv.headers["content-disposition"] == f'attachment; filename="{rid}.csv"'
    assert (conflict.status_code, conflict.headers["content-type"], conflict.json()) == (
        409,
        PROBLEM,
        problem,
    )
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")


async def test_media_paths_are_forwarded_quoted_and_anything_else_is_refused_here(client, tracker):
    tracker.answers["/media/"] = httpx.Response(
        200, content=b"\xff\xd8jpeg", headers={"content-type": "image/jpeg"}
    )

    ok = await client.get("/media/ab/c%20d.jpg")
    refused = [
        await client.get(path)
        for path in (
            "/media/../secret",
            "/media/a/%2e%2e/b",
            "/media//evil.example/x.jpg",
            "/media/a%5Cb",
            "/media/",
        )
    ]

    assert (ok.status_code, ok.content, ok.headers["content-type"]) == (200, b"\xff\xd8jpeg", "image/jpeg")
    assert [r.status_code for r in refused] == [404] * len(refused)
    assert [str(r.url) for r in tracker.sent] == [f"{TRACKER}/media/ab/c%20d.jpg"]


async def test_only_the_tracker_host_is_ever_called(client, tracker):
    rid = uuid4()
    for path in (
        f"/status/{rid}",
        f"/requests/{rid}/images?cursor=//evil.example",
        "/media/http:/evil.example/a.jpg",
        "/media/%2F%2Fevil.example/a.jpg",
        f"/requests/{rid}/events",
    ):
        await client.get(path)
    assert tracker.sent
    assert {(r.url.scheme, r.url.host, r.url.port) for r in tracker.sent} == {
        ("http", "tracker.internal", 8001)
    }


async def test_a_base_url_with_a_path_keeps_it(tracker):
    async with ingest_app(tracker, base="http://tracker.internal:8001/api/") as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            rid = uuid4()
            await c.get(f"/status/{rid}")
    assert str(tracker.sent[0].url) == f"http://tracker.internal:8001/api/status/{rid}"


@pytest.mark.parametrize(
    ("failure", "status", "slug"),
    [
        (httpx.ConnectError("refused"), 502, "bad-gateway"),
        (httpx.ReadTimeout("slow"), 504, "gateway-timeout"),
    ],
)
async def test_a_tracker_that_is_down_or_slow_is_a_502_or_504_problem(client, tracker, failure, status, slug):
    tracker.failure = failure

    resp = await client.get(f"/status/{uuid4()}")

    assert resp.status_code == status
    assert resp.headers["content-type"] == PROBLEM
    assert resp.json()["type"].endswith(slug)


def events_scope(key: str) -> dict:
    """The ASGI scope of GET /requests/{id}/events with `key`: a raw call sees the stream as it flows."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/requests/{uuid4()}/events",
        "raw_path": b"",
        "query_string": b"",
        "headers": [(b"host", b"ingest.test"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("ingest.test", 80),
    }


async def test_events_are_relayed_as_they_arrive_not_when_the_stream_ends(tracker):
    first_seen = asyncio.Event()
    closed = asyncio.Event()

    class Upstream(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b"event: progress\ndata: {}\n\n"
            await asyncio.wait_for(first_seen.wait(), 5)  # only once the caller has the first event
            yield b"event: done\ndata: {}\n\n"

        async def aclose(self) -> None:
            closed.set()

    tracker.answers["/requests/"] = httpx.Response(
        200, stream=Upstream(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
    )
    async with ingest_app(tracker) as (_, asgi):
        body, started = [], {}
        scope = events_scope(KEY)
        disconnect = asyncio.Event()

        async def receive():
            if not started.get("request_sent"):
                started["request_sent"] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
                started["headers"] = dict(message["headers"])
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if b"event: progress" in b"".join(body):
                    first_seen.set()

        await asyncio.wait_for(asgi(scope, receive, send), 10)
        disconnect.set()

    assert started["status"] == 200
    assert started["headers"][b"content-type"] == b"text/event-stream"
    assert b"".join(body) == b"event: progress\ndata: {}\n\nevent: done\ndata: {}\n\n"
    assert closed.is_set()


async def test_the_client_made_on_first_use_is_closed_at_shutdown():
    # Port 9 on loopback: nothing listens there, so the call fails at once (a 502).
    async with ingest_app(None, base="http://127.0.0.1:9") as (app, asgi):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            resp = await c.get(f"/status/{uuid4()}")
        made = app.state.gateway_client
    assert resp.status_code == 502
    assert made is not None
    assert made.is_closed
    assert app.state.gateway_client is None


# --- the page ---------------------------------------------------------------------------------------


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(client):
    page = await client.get("/")
    script = await client.get("/assets/app.js")
    style = await client.get("/assets/style.css")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/assets/app.js" defer></script>' in page.text
    assert "http" not in page.text.split("<body>")[0].replace('content="width', "")  # nothing from elsewhere
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "Authorization" in script.text
    assert style.headers["content-type"] == "text/css; charset=utf-8"


async def test_only_the_pages_own_assets_are_reachable(client):
    for path in ("/assets/index.html", "/assets/../config.py", "/assets/%2e%2e/config.py", "/assets/nope.js"):
        resp = await client.get(path)
        assert resp.status_code == 404, path


async def test_the_page_is_not_in_the_openapi_document_and_the_gateway_is(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert not {"/", "/assets/{name}", "/media/{path}"} & set(paths)
    assert {
        "/status/{request_id}",
        "/requests/{request_id}/events",
        "/requests/{request_id}/output.csv",
    } <= set(paths)


# --- limits on progress streams -----------------------------------------------------------------------


class EndlessEvents(httpx.AsyncByteStream):
    """An upstream event stream that stays open until the test ends it."""

    def __init__(self, end: asyncio.Event) -> None:
        self.end = end
        self.closed = False

    async def __aiter__(self):
        yield b": keep-alive\n\n"
        await self.end.wait()

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class OpenStream:
    status: int
    task: asyncio.Task
    gone: asyncio.Event  # set: the caller disconnects

    async def close(self) -> None:
        self.gone.set()
        await asyncio.wait_for(self.task, 5)


async def open_stream(asgi, key: str) -> OpenStream:
    """GET an events URL as a raw ASGI call; returns once the answer has started, the stream still open."""
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    gone = asyncio.Event()
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message["status"])

    task = asyncio.create_task(asgi(events_scope(key), receive, send))
    status = await asyncio.wait_for(started, 5)
    return OpenStream(status, task, gone)


@pytest.fixture
def endless(tracker):
    """Every events call gets its own endless upstream; the list holds them all."""
    end = asyncio.Event()
    upstreams: list[EndlessEvents] = []

    def answer() -> httpx.Response:
        upstreams.append(EndlessEvents(end))
        return httpx.Response(200, stream=upstreams[-1], headers={"content-type": "text/event-stream"})

    tracker.answers["/requests/"] = answer
    yield upstreams
    end.set()


async def test_a_key_beyond_its_open_streams_gets_429_and_a_closed_stream_frees_its_place(tracker, endless):
    keys = MemoryKeyStore()
    first, second = keys.add("acme", "read"), keys.add("acme", "read")
    async with ingest_app(tracker, keys=keys, gateway_max_streams_per_key=3) as (_, asgi):
        opened = [await open_stream(asgi, first) for _ in range(3)]
        refused = await open_stream(asgi, first)
        other_key = await open_stream(asgi, second)
        await opened[0].close()
        again = await open_stream(asgi, first)

        assert [s.status for s in opened] == [200, 200, 200]
        assert (refused.status, other_key.status, again.status) == (429, 200, 200)
        for stream in [*opened[1:], other_key, again, refused]:
            await stream.close()


async def test_one_tenant_cannot_hold_more_than_its_streams_whatever_its_keys(tracker, endless):
    keys = MemoryKeyStore()
    greedy = [keys.add("greedy", "read") for _ in range(4)]
    other = keys.add("other", "read")
    settings = {"gateway_max_streams_per_key": 2, "gateway_max_streams_per_tenant": 5}
    async with ingest_app(tracker, keys=keys, **settings) as (_, asgi):
        opened = [await open_stream(asgi, key) for key in greedy for _ in range(2)]
        others = await open_stream(asgi, other)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            read = await c.get(f"/status/{uuid4()}", headers={"Authorization": f"Bearer {other}"})

        assert [s.status for s in opened].count(200) == 5
        assert [s.status for s in opened].count(429) == 3
        assert others.status == 200
        assert read.status_code == 200
        for stream in [*opened, others]:
            await stream.close()


async def test_a_refused_stream_says_why_and_a_stranger_is_401_before_any_limit(tracker, endless):
    keys = MemoryKeyStore()
    key = keys.add("acme", "read")
    async with ingest_app(tracker, keys=keys, gateway_max_streams_per_key=1) as (_, asgi):
        held = await open_stream(asgi, key)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            refused = await c.get(f"/requests/{uuid4()}/events", headers={"Authorization": f"Bearer {key}"})
            stranger = await c.get(f"/requests/{uuid4()}/events", headers={"Authorization": "Bearer imgp_x"})
        await held.close()

    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/too-many-streams")
    assert refused.headers["retry-after"]
    assert stranger.status_code == 401
    assert [u.closed for u in endless] == [True]  # the held stream's upstream closed when its caller left


async def test_streams_and_reads_use_separate_clients(tracker):
    async with ingest_app(None, base="http://127.0.0.1:9") as (app, asgi):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test", headers=BEARER) as c:
            await c.get(f"/status/{uuid4()}")
            await c.get(f"/requests/{uuid4()}/events")
        reads, streams = app.state.gateway_client, app.state.gateway_stream_client
        assert None not in (reads, streams)
        assert reads is not streams
    assert (reads.is_closed, streams.is_closed) == (True, True)
