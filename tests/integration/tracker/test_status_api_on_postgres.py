"""The tracker API on the real PostgreSQL, served by uvicorn on loopback: tenant-scoped queries,
the output CSV of a hostile product name, and capped progress streams beside plain reads."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn
from pipeline_runtime.auth import AsyncpgKeyStore
from pipeline_runtime.serving import server_config
from tracker.api import create_app
from tracker.api.queries import AsyncpgProgressQueries
from tracker.config import Settings

pytestmark = pytest.mark.integration

ATTACK = "x\n=cmd|' /C calc'!A0"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
async def pool(fresh_database_url) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def new_request(
    pool: asyncpg.Pool, tenant: str, names: list[str], *, finished: bool = False
) -> uuid.UUID:
    """A request of `tenant` with one image per product name (done and finished if asked)."""
    rid = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO requests (request_id, tenant_id, file_sha256, total_products, total_images,"
            " processed_images, completed_at) VALUES ($1, $2, 'x', $3, $3, $4, $5)",
            rid,
            tenant,
            len(names),
            len(names) if finished else 0,
            await conn.fetchval("SELECT now()") if finished else None,
        )
        await conn.executemany(
            "INSERT INTO products (request_id, row_number, serial_number, product_name) VALUES ($1, $2, $3, $4)",
            [(rid, n + 2, n + 1, name) for n, name in enumerate(names)],
        )
        await conn.executemany(
            "INSERT INTO images (image_id, request_id, row_number, serial_number, position,"
            " input_url, status, output_url) VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
            [
                (
                    uuid.uuid4(),
                    rid,
                    n + 2,
                    n + 1,
                    f"http://127.0.0.1:9/{n}.jpg",
                    "done" if finished else "pending",
                    f"http://127.0.0.1:9/out/{n}.jpg" if finished else None,
                )
                for n, name in enumerate(names)
            ],
        )
    return rid


async def test_every_query_answers_only_for_the_requests_tenant(pool):
    queries = AsyncpgProgressQueries(pool)
    rid = await new_request(pool, "acme", ["Shirt", "Hat"], finished=True)

    mine = (
        await queries.request_status("acme", rid),
        await queries.images_page("acme", rid, None, 10),
        await queries.output_images("acme", rid),
    )
    theirs = (
        await queries.request_status("globex", rid),
        await queries.images_page("globex", rid, None, 10),
        await queries.output_images("globex", rid),
    )

    assert mine[0] is not None
    assert mine[0].tenant_id == "acme"
    assert [i.product_name for i in mine[1]] == ["Shirt", "Hat"]
    assert [i.product_name for i in mine[2]] == ["Shirt", "Hat"]
    assert theirs == (None, [], [])


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The API with its real resources, served as in production (serving's uvicorn) on a free loopback port."""
    config = server_config(create_app(settings), host="127.0.0.1", port=0, settings=settings.http)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the API did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def api(fresh_database_url, tmp_path) -> AsyncIterator[str]:
    settings = Settings(
        database_url=fresh_database_url,
        media_dir=tmp_path / "media",
        events_max_per_key=2,
        events_max_per_tenant=3,
        events_pool_size=1,
        events_max_seconds=60,
    )
    async with serving(settings) as url:
        yield url


async def read_key(pool: asyncpg.Pool, tenant: str) -> dict[str, str]:
    _, key = await AsyncpgKeyStore(pool).create(tenant, ["read"])
    return {"Authorization": f"Bearer {key}"}


async def test_a_product_name_with_a_newline_stays_one_neutralised_record(api, pool):
    headers = await read_key(pool, "acme")
    rid = await new_request(pool, "acme", [ATTACK, "Hat"], finished=True)

    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"{api}/requests/{rid}/output.csv", headers=headers)

    assert resp.status_code == 200, resp.text
    rows = list(csv.reader(io.StringIO(resp.text, newline="")))
    assert [len(r) for r in rows] == [5, 5, 5]
    assert rows[1][1] == "x\n'=cmd|' /C calc'!A0"
    assert rows[1][3] == "http://127.0.0.1:9/out/0.jpg"
    assert rows[2] == ["2", "Hat", "http://127.0.0.1:9/1.jpg", "http://127.0.0.1:9/out/1.jpg", "jpeg"]
    assert not [line for line in resp.text.splitlines() if line.startswith(FORMULA_STARTS)]


async def open_stream(stack: contextlib.AsyncExitStack, http: httpx.AsyncClient, url: str, headers) -> int:
    """Open a progress stream and keep it open (in `stack`); its status, after the first event if 200."""
    resp = await stack.enter_async_context(http.stream("GET", url, headers=headers))
    if resp.status_code == 200:
        lines = resp.aiter_lines()
        # Closing the line iterator would close the connection: the stack keeps it until the end.
        stack.push_async_callback(lines.aclose)
        async for line in lines:
            if line.startswith("event: progress"):
                break
    return resp.status_code


async def test_streams_are_capped_per_key_and_tenant_and_plain_reads_keep_answering(api, pool):
    key_a, key_b, key_c = [await read_key(pool, "acme") for _ in range(3)]
    other = await read_key(pool, "globex")
    rid = await new_request(pool, "acme", ["Shirt"])
    theirs = await new_request(pool, "globex", ["Hat"])
    events = f"{api}/requests/{rid}/events"
    limits = httpx.Limits(max_connections=20)

    async with httpx.AsyncClient(timeout=10, limits=limits) as http, contextlib.AsyncExitStack() as held:
        opened = [await open_stream(held, http, events, key) for key in (key_a, key_a, key_b)]
        over_key = await http.get(events, headers=key_a)
        over_tenant = await http.get(events, headers=key_c)
        reads = [await http.get(f"{api}/status/{theirs}", headers=other) for _ in range(20)]
        own_read = await http.get(f"{api}/status/{rid}", headers=key_c)
        stream_connections = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tracker-api-streams'"
        )

    assert opened == [200, 200, 200]
    for resp in (over_key, over_tenant):
        assert resp.status_code == 429, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["type"].endswith("/too-many-streams")
    assert [r.status_code for r in reads] == [200] * 20
    assert own_read.status_code == 200  # a capped tenant still reads its status
    assert stream_connections == 1  # the streams polled, through their own TRACKER_EVENTS_POOL_SIZE


async def test_a_closed_stream_frees_its_place(api, pool):
    key = await read_key(pool, "acme")
    rid = await new_request(pool, "acme", ["Shirt"])
    events = f"{api}/requests/{rid}/events"

    async with httpx.AsyncClient(timeout=10) as http:
        async with contextlib.AsyncExitStack() as held:
            assert [await open_stream(held, http, events, key) for _ in range(2)] == [200, 200]
            assert (await http.get(events, headers=key)).status_code == 429
        # The server notices the closed connections as it polls; give it a bounded number of tries.
        statuses = []
        for _ in range(50):
            async with contextlib.AsyncExitStack() as again:
                statuses.append(await open_stream(again, http, events, key))
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.1)

    assert statuses[-1] == 200
