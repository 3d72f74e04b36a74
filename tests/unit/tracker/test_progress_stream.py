"""The progress stream (Server-Sent Events) of the tracker API, with a fake repository and key store."""

from __future__ import annotations

import asyncio
import json
from uuid import UUID, uuid4

import httpx
import pytest
from pipeline_runtime.auth import Principal
from tracker.api.models import RequestStatus
from tracker.api.progress_stream import StreamTiming, progress_stream, stream_timing
from tracker.config import Settings

from tests.unit.tracker.fakes import PROBLEM, FakeQueries, ScriptedQueries, build_app, request_row, serve

KEYS = {
    "reader": Principal(uuid4(), "default", frozenset({"read"})),
    "reader-2": Principal(uuid4(), "default", frozenset({"read"})),
    "reader-3": Principal(uuid4(), "default", frozenset({"read"})),
    "uploader": Principal(uuid4(), "default", frozenset({"upload"})),
    "other-tenant": Principal(uuid4(), "acme", frozenset({"read"})),
}


class VirtualClock:
    """A stream's clock whose sleeps pass at once: no test here waits on, or depends on, real time."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += seconds
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would


def fast(
    max_seconds: float = 3.0, poll_seconds: float = 0.01, keepalive_seconds: float = 10.0
) -> StreamTiming:
    return StreamTiming(max_seconds, poll_seconds, keepalive_seconds, clock=VirtualClock())


class FakeKeyStore:
    async def find(self, key: str) -> Principal | None:
        return KEYS.get(key)


def status_body(rid: UUID, total: int, processed: int, failed: int) -> dict:
    return RequestStatus.of(request_row(rid, total, processed, failed)).model_dump(mode="json")


@pytest.fixture
def repository() -> ScriptedQueries:
    return ScriptedQueries()


@pytest.fixture
async def client(repository, tmp_path):
    app = build_app(repository, FakeKeyStore(), Settings(media_dir=tmp_path / "media"))
    app.dependency_overrides[stream_timing] = fast
    async with serve(app, {"Authorization": "Bearer reader"}) as client:
        client.app = app
        yield client


def parse(stream: str) -> list[tuple[str, str]]:
    """(event, data) per message, and ("comment", text) per comment line."""
    messages = []
    for block in stream.split("\n\n"):
        event, data = None, []
        for line in block.splitlines():
            if line.startswith(":"):
                messages.append(("comment", line[1:].strip()))
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        if event:
            messages.append((event, "\n".join(data)))
    return messages


async def test_a_finished_request_gives_its_status_then_done_and_the_stream_ends(client, repository):
    rid = repository.script((3, 2, 1))

    resp = await client.get(f"/requests/{rid}/events")

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["cache-control"] == "no-cache"
    assert resp.text.startswith("retry: ")
    events = [m for m in parse(resp.text) if m[0] != "comment"]
    assert [e for e, _ in events] == ["progress", "done"]
    status = json.loads(events[0][1])
    assert (status["status"], status["progress"], status["failed_images"]) == (
        "completed_with_errors",
        1.0,
        1,
    )


async def test_the_data_is_exactly_what_get_status_answers(client, repository):
    rid = repository.script((4, 1, 0))
    expected = (await client.get(f"/status/{rid}")).json()
    repository.scripts[rid] = [request_row(rid, 4, 4, 0)]
    final = (await client.get(f"/status/{rid}")).json()
    repository.scripts[rid] = [request_row(rid, 4, 1, 0), request_row(rid, 4, 4, 0)]

    events = parse((await client.get(f"/requests/{rid}/events")).text)

    assert json.loads(events[0][1]) == expected
    assert json.loads(events[-1][1]) == final


async def test_every_change_is_sent_once_and_unchanged_reads_send_nothing(client, repository):
    rid = repository.script((4, 0, 0), (4, 0, 0), (4, 1, 0), (4, 1, 0), (4, 1, 0), (4, 2, 1), (4, 3, 1))

    events = parse((await client.get(f"/requests/{rid}/events")).text)

    progress = [json.loads(d) for e, d in events if e == "progress"]
    assert [(p["processed_images"], p["failed_images"]) for p in progress] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert [e for e, _ in events if e != "comment"][-1] == "done"
    assert progress[-1]["completed_at"] is not None


async def test_an_unfinished_request_gets_keep_alives_and_the_stream_ends_at_the_time_limit(
    client, repository
):
    rid = repository.script((5, 1, 0))
    client.app.dependency_overrides[stream_timing] = lambda: fast(0.5, 0.01, 0.1)

    resp = await client.get(f"/requests/{rid}/events")

    messages = parse(resp.text)
    assert [e for e, _ in messages if e != "comment"] == ["progress"]  # no done: not finished
    comments = [text for e, text in messages if e == "comment"]
    assert comments.count("keep-alive") >= 3
    assert "time limit" in comments[-1]


async def test_unknown_and_other_tenants_requests_are_404_and_a_bad_id_is_422(client, repository):
    mine = repository.script((2, 0, 0))
    theirs = repository.script((2, 2, 0), tenant="acme")

    for path, status in [(uuid4(), 404), (theirs, 404), ("not-a-uuid", 422)]:
        resp = await client.get(f"/requests/{path}/events")
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"] == PROBLEM
    other = await client.get(f"/requests/{theirs}/events", headers={"Authorization": "Bearer other-tenant"})
    assert other.status_code == 200
    assert (
        await client.get(f"/requests/{mine}/events", headers={"Authorization": "Bearer other-tenant"})
    ).status_code == 404


async def test_a_key_is_required_and_it_needs_the_read_scope(client, repository):
    rid = repository.script((1, 1, 0))

    missing = await client.get(f"/requests/{rid}/events", headers={"Authorization": ""})
    unknown = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer nope"})
    no_scope = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer uploader"})

    assert (missing.status_code, unknown.status_code, no_scope.status_code) == (401, 401, 403)
    assert repository.reads == 0  # nothing is read for a caller that may not read


async def test_a_database_that_is_down_before_the_stream_is_a_503(client, repository):
    rid = repository.script((1, 0, 0))
    repository.failure = ConnectionRefusedError("down")

    resp = await client.get(f"/requests/{rid}/events")

    assert resp.status_code == 503
    assert resp.headers["content-type"] == PROBLEM
    assert resp.headers["retry-after"] == "5"


async def test_a_database_failure_mid_stream_ends_the_stream():
    rid = uuid4()
    reads = [status_body(rid, 2, 1, 0)]

    async def read(_: UUID):
        if reads:
            return reads.pop()
        raise ConnectionResetError("lost")

    first = status_body(rid, 2, 0, 0)
    chunks = [c async for c in progress_stream(read, rid, first, fast())]

    events = [e for e, _ in parse("".join(chunks)) if e != "comment"]
    assert events == ["progress", "progress"]  # the initial one and the change; then it ended


# --- caps on open streams, and plain reads beside them ---


async def until(condition, what: str, rounds: int = 500) -> None:
    """Let the other tasks run until `condition()` holds (bounded in rounds, not timed)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def capped(tmp_path):
    """An app with caps of 2 per key, 3 per tenant, 4 in all, whose stream polls wait for a gate;
    plain reads use queries of their own that never wait."""
    plain = FakeQueries()
    streams = ScriptedQueries(gate=asyncio.Event())
    settings = Settings(
        media_dir=tmp_path / "media", events_max_per_key=2, events_max_per_tenant=3, events_max_open=4
    )
    app = build_app(plain, FakeKeyStore(), settings, stream_queries=streams)
    app.dependency_overrides[stream_timing] = fast
    async with serve(app) as client:
        client.app = app
        yield client, app.state.stream_slots, plain, streams


def get(client: httpx.AsyncClient, path: str, key: str):
    return asyncio.create_task(client.get(path, headers={"Authorization": f"Bearer {key}"}))


async def test_a_key_a_tenant_and_the_process_are_capped_and_refused_with_a_429_problem(capped):
    client, slots, _, streams = capped
    rid = streams.script((1, 1, 0))
    theirs = streams.script((1, 1, 0), tenant="acme")
    held = [get(client, f"/requests/{rid}/events", key) for key in ("reader", "reader", "reader-2")]
    await until(lambda: slots.open == 3, "three streams open")

    over_key = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer reader"})
    over_tenant = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer reader-3"})
    held.append(get(client, f"/requests/{theirs}/events", "other-tenant"))
    await until(lambda: slots.open == 4, "a fourth stream, of another tenant")
    over_total = await client.get(
        f"/requests/{theirs}/events", headers={"Authorization": "Bearer other-tenant"}
    )

    for resp, cap in ((over_key, "this key"), (over_tenant, "this tenant"), (over_total, "the server")):
        assert resp.status_code == 429, resp.text
        assert resp.headers["content-type"] == PROBLEM
        assert resp.headers["retry-after"] == "5"
        assert resp.json()["detail"].startswith(cap)
    assert streams.reads == 4  # a refused caller costs the database nothing
    streams.gate.set()
    assert [(await task).status_code for task in held] == [200, 200, 200, 200]
    assert slots.open == 0  # every finished stream gave its place back
    again = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer reader"})
    assert again.status_code == 200


async def test_plain_reads_answer_while_every_stream_poll_waits(capped):
    client, slots, plain, streams = capped
    rid = streams.script((2, 1, 0))
    mine = plain.add([], processed=0)
    held = [get(client, f"/requests/{rid}/events", key) for key in ("reader", "reader-2")]
    await until(lambda: slots.open == 2, "two streams open, both waiting on their database reads")

    status = await client.get(f"/status/{mine}", headers={"Authorization": "Bearer reader"})

    assert status.status_code == 200
    assert {call[0] for call in plain.calls} == {"request_status"}  # the streams never read through it
    streams.gate.set()
    await asyncio.gather(*held)


async def test_a_stream_that_fails_to_start_gives_its_place_back(capped):
    client, slots, _, streams = capped
    streams.gate.set()
    unknown = await client.get(f"/requests/{uuid4()}/events", headers={"Authorization": "Bearer reader"})
    streams.failure = ConnectionRefusedError("down")
    down = await client.get(f"/requests/{uuid4()}/events", headers={"Authorization": "Bearer reader"})

    assert (unknown.status_code, down.status_code) == (404, 503)
    assert slots.open == 0


async def test_a_client_that_disconnects_mid_stream_gives_its_place_back(capped):
    client, slots, _, streams = capped
    streams.gate.set()
    rid = streams.script((3, 1, 0))  # never finishes, and the time limit is far: only the disconnect ends it
    client.app.dependency_overrides[stream_timing] = lambda: StreamTiming(600.0, 0.01, 10.0)  # real time
    app = client._transport.app  # the app as served, inside its lifespan
    gone = asyncio.Event()
    sent: list[dict] = []

    async def receive() -> dict:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/requests/{rid}/events",
        "raw_path": f"/requests/{rid}/events".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"tracker.test"), (b"authorization", b"Bearer reader")],
        "client": ("127.0.0.1", 50000),
        "server": ("tracker.test", 80),
    }
    stream = asyncio.create_task(app(scope, receive, send))
    await until(lambda: any(m.get("body", b"").startswith(b"event: progress") for m in sent), "first event")
    assert slots.open == 1

    gone.set()
    await asyncio.wait_for(stream, 5)

    assert slots.open == 0
