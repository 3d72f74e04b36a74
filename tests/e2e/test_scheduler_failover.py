"""Two ingest instances: kill -9 the one that schedules mid-request; the other takes over in seconds.

Every image still ends done exactly once and the webhook fires once: admission is one
transaction with its outbox rows, and the tracker counts an image only while it is pending.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
import uuid

import asyncpg
import httpx
import pytest
from aiohttp import web
from devstack import procs, services
from devstack.profiles import REPO_ROOT
from ingest.admission_store import APPLICATION_NAME, LOCK_KEY

from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.images import product_photo_jpeg
from tests.support.servers import LocalServer, wait_until

pytestmark = pytest.mark.e2e
IMAGES = 400
TAKEOVER_SECONDS = 5.0

_HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def scheduler_pid(database_url: str) -> int | None:
    """The OS pid of the ingest process holding the scheduler lock, if any."""
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval(_HOLDER, LOCK_KEY)
    finally:
        await conn.close()
    if not name or not name.startswith(APPLICATION_NAME):
        return None
    return int(name.rsplit(" ", 1)[1])


@pytest.fixture
async def second_ingest(pipeline):
    """A second ingest instance of the same stack on a port of its own; stopped after the test."""
    port = free_port()
    env = {
        **pipeline.service_env(),
        **services.remembered_env(pipeline),
        "SERVICE_INSTANCE": "ingest-2",
        "INGEST_PORT": str(port),
        "INGEST_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    procs.start(pipeline.run_dir, "ingest-2", [sys.executable, "-m", "ingest"], env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    assert await wait_until(lambda: healthy(url), timeout=60)
    yield url
    procs.stop(pipeline.run_dir, "ingest-2", grace=10)
    if procs.read_pid(pipeline.run_dir, "ingest") is None:  # the test killed the first one
        services.start_one(pipeline, "ingest")
        services.wait_healthy(pipeline)


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{url}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_killing_the_scheduling_instance_mid_request_loses_nothing_and_counts_once(
    pipeline, second_ingest, ingest_url, tracker_url, api_key, database_url
):
    host = await LocalServer(files={"p.jpg": product_photo_jpeg(900, 700, seed=5)}).start()
    hook = LocalServer()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(status=204)

    hook.routes["hook"] = ok
    await hook.start()
    try:
        names = {procs.read_pid(pipeline.run_dir, n): n for n in ("ingest", "ingest-2")}
        assert await wait_until(lambda: _leader_in(database_url, names), timeout=15)
        leader = await scheduler_pid(database_url)
        survivor = second_ingest if names[leader] == "ingest" else ingest_url
        csv = csv_of([(n, f"k{n}", [host.url(f"p.jpg?k={n}")]) for n in range(1, IMAGES + 1)])
        accepted = await upload_csv(survivor, csv, headers=bearer(api_key), webhook_url=hook.url("hook"))
        rid = accepted["request_id"]

        assert await wait_until(lambda: _started(tracker_url, api_key, rid), timeout=60, interval=0.1)
        procs.stop(pipeline.run_dir, names[leader], grace=0, sig=signal.SIGKILL)
        killed_at = time.monotonic()
        assert await wait_until(
            lambda: _leader_is_not(database_url, leader), timeout=TAKEOVER_SECONDS * 2, interval=0.1
        )
        takeover = time.monotonic() - killed_at
        final = await wait_for_completion(accepted["status_url"], timeout=180, headers=bearer(api_key))
        await asyncio.sleep(2.0)  # room for a second webhook, which must not come
        counted = await _image_states(database_url, rid)
    finally:
        await host.stop()
        await hook.stop()

    print(f"\nscheduler takeover after kill -9: {takeover:.2f} s")
    assert takeover < TAKEOVER_SECONDS
    assert await scheduler_pid(database_url) != leader
    assert (final["status"], final["processed_images"], final["failed_images"]) == ("completed", IMAGES, 0)
    assert counted == {"done": IMAGES}
    hooks = hook.hits("hook")
    assert len(hooks) == 1
    assert json.loads(hooks[0].body)["processed_images"] == IMAGES


async def _leader_in(database_url: str, pids: dict) -> bool:
    return await scheduler_pid(database_url) in pids


async def _leader_is_not(database_url: str, old: int) -> bool:
    now = await scheduler_pid(database_url)
    return now is not None and now != old


async def _started(tracker_url: str, key: str, rid: str) -> bool:
    async with httpx.AsyncClient(timeout=10) as http:
        body = (await http.get(f"{tracker_url}/status/{rid}", headers=bearer(key))).json()
    return body["processed_images"] >= 20 and body["queued_images"] > 0


async def _image_states(database_url: str, rid: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM images WHERE request_id = $1 GROUP BY status", uuid.UUID(rid)
        )
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}
