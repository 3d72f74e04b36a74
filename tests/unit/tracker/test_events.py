"""The progress stream (Server-Sent Events) of the tracker API, with a fake repository and key store."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pipeline_runtime.auth import Principal
from tracker.api import Resources, create_api
from tracker.config import Settings
from tracker.events import StreamLimits, progress_stream, status_body, stream_limits

PROBLEM = "application/problem+json"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KEYS = {
    "reader": Principal(uuid4(), "default", frozenset({"read"})),
    "uploader": Principal(uuid4(), "default", frozenset({"upload"})),
    "other-tenant": Principal(uuid4(), "acme", frozenset({"read"})),
}
FAST = StreamLimits(max_seconds=3.0, poll_seconds=0.01, keepalive_seconds=10.0)


def row(rid: UUID, total: int, processed: int, failed: int, tenant: str = "default") -> dict:
    finished = processed + failed >= total
    status = "pending" if processed + failed == 0 else "processing"
    if finished:
        status = "completed" if failed == 0 else ("failed" if processed == 0 else "completed_with_errors")
    return {
        "request_id": rid,
        "tenant_id": tenant,
        "status": status,
        "total_products": total,
        "total_images": total,
        "processed_images": processed,
        "failed_images": failed,
        "created_at": T0,
        "updated_at": T0 + timedelta(seconds=processed + failed),
        "completed_at": T0 + timedelta(minutes=1) if finished else None,
    }


@dataclass
class ScriptedRepository:
    """Each status read returns the next state of its request's script (the last one repeats)."""

    scripts: dict[UUID, list[dict]] = field(default_factory=dict)
    reads: int = 0
    failure: Exception | None = None

    def add(self, *states: tuple[int, int, int], tenant: str = "default") -> UUID:
        rid = uuid4()
        self.scripts[rid] = [row(rid, *state, tenant=tenant) for state in states]
        return rid

    async def request_status(self, request_id: UUID):
        self.reads += 1
        if self.failure:
            raise self.failure
        script = self.scripts.get(request_id)
        if not script:
            return None
        return script.pop(0) if len(script) > 1 else script[0]

    async def images_page(self, request_id, after, limit):
        return []

    async def all_images(self, request_id):
        return []


class FakeKeyStore:
    async def find(self, key: str) -> Principal | None:
        return KEYS.get(key)


@pytest.fixture
def repository() -> ScriptedRepository:
    return ScriptedRepository()


@pytest.fixture
async def client(repository, tmp_path):
    @contextlib.asynccontextmanager
    async def resources(_settings):
        async def database_reachable() -> bool:
            return True

        yield Resources(repository, database_reachable, FakeKeyStore())

    app = create_api(Settings(media_dir=tmp_path / "media"), resources=resources)
    app.dependency_overrides[stream_limits] = lambda: FAST
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tracker.test", headers={"Authorization": "Bearer reader"}
        ) as client:
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
    rid = repository.add((3, 2, 1))

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
    rid = repository.add((4, 1, 0))
    expected = (await client.get(f"/status/{rid}")).json()
    repository.scripts[rid] = [row(rid, 4, 4, 0)]
    final = (await client.get(f"/status/{rid}")).json()
    repository.scripts[rid] = [row(rid, 4, 1, 0), row(rid, 4, 4, 0)]

    events = parse((await client.get(f"/requests/{rid}/events")).text)

    assert json.loads(events[0][1]) == expected
    assert json.loads(events[-1][1]) == final


async def test_every_change_is_sent_once_and_unchanged_reads_send_nothing(client, repository):
    rid = repository.add((4, 0, 0), (4, 0, 0), (4, 1, 0), (4, 1, 0), (4, 1, 0), (4, 2, 1), (4, 3, 1))

    events = parse((await client.get(f"/requests/{rid}/events")).text)

    progress = [json.loads(d) for e, d in events if e == "progress"]
    assert [(p["processed_images"], p["failed_images"]) for p in progress] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert [e for e, _ in events if e != "comment"][-1] == "done"
    assert progress[-1]["completed_at"] is not None


async def test_an_unfinished_request_gets_keep_alives_and_the_stream_ends_at_the_time_limit(
    client, repository
):
    rid = repository.add((5, 1, 0))
    client.app.dependency_overrides[stream_limits] = lambda: StreamLimits(0.5, 0.01, 0.1)

    resp = await client.get(f"/requests/{rid}/events")

    messages = parse(resp.text)
    assert [e for e, _ in messages if e != "comment"] == ["progress"]  # no done: not finished
    comments = [text for e, text in messages if e == "comment"]
    assert comments.count("keep-alive") >= 3
    assert "time limit" in comments[-1]


async def test_unknown_and_other_tenants_requests_are_404_and_a_bad_id_is_422(client, repository):
    mine = repository.add((2, 0, 0))
    theirs = repository.add((2, 2, 0), tenant="acme")

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
    rid = repository.add((1, 1, 0))

    missing = await client.get(f"/requests/{rid}/events", headers={"Authorization": ""})
    unknown = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer nope"})
    no_scope = await client.get(f"/requests/{rid}/events", headers={"Authorization": "Bearer uploader"})

    assert (missing.status_code, unknown.status_code, no_scope.status_code) == (401, 401, 403)
    assert repository.reads == 0  # nothing is read for a caller that may not read


async def test_a_database_that_is_down_before_the_stream_is_a_503(client, repository):
    rid = repository.add((1, 0, 0))
    repository.failure = ConnectionRefusedError("down")

    resp = await client.get(f"/requests/{rid}/events")

    assert resp.status_code == 503
    assert resp.headers["content-type"] == PROBLEM
    assert resp.headers["retry-after"] == "5"


async def test_a_database_failure_mid_stream_ends_the_stream():
    rid = uuid4()
    reads = [status_body(row(rid, 2, 1, 0))]

    async def read(_: UUID):
        if reads:
            return reads.pop()
        raise ConnectionResetError("lost")

    first = status_body(row(rid, 2, 0, 0))
    chunks = [c async for c in progress_stream(read, rid, first, FAST)]

    events = [e for e, _ in parse("".join(chunks)) if e != "comment"]
    assert events == ["progress", "progress"]  # the initial one and the change; then it ended
