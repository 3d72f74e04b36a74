"""Latency of small requests on an idle stack: upload -> completed, upload -> webhook (issue 14).

Used by pipeline_bench.py while its stack is up and idle. Each round uploads one 10-image request
with a webhook URL on a local receiver; "completed" is the request's completed_at as PostgreSQL
recorded it, "webhook" the moment the receiver got the POST. Rounds run one after another, so
each meets an idle stack; the medians are printed.
"""

import asyncio
import json
import statistics
import time
import uuid

import asyncpg
import httpx
from aiohttp import web

ROUNDS = 7
IMAGES = 10


async def _receiver(arrivals: dict[str, float]) -> tuple[web.AppRunner, str]:
    async def hook(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        arrivals.setdefault(body["request_id"], time.time())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def _round(
    profile, client: httpx.AsyncClient, conn, csv: bytes, hook: str, arrivals
) -> tuple[float, float]:
    started = time.time()
    resp = await client.post(
        f"http://127.0.0.1:{profile.ingest_port}/upload",
        files={"file": ("latency.csv", csv, "text/csv")},
        data={"webhook_url": hook},
        headers={"Authorization": f"Bearer {profile.api_key()}"},
    )
    resp.raise_for_status()
    request_id = resp.json()["request_id"]
    deadline = time.monotonic() + 60
    completed = None
    while time.monotonic() < deadline and (completed is None or request_id not in arrivals):
        if completed is None:
            completed = await conn.fetchval(
                "SELECT completed_at FROM requests WHERE request_id = $1", uuid.UUID(request_id)
            )
        await asyncio.sleep(0.01)
    if completed is None or request_id not in arrivals:
        raise TimeoutError(f"request {request_id}: no completion or webhook within 60 s")
    return completed.timestamp() - started, arrivals[request_id] - started


async def measure(profile, csv: bytes) -> tuple[list[float], list[float]]:
    """(upload -> completed, upload -> webhook) seconds of each round."""
    arrivals: dict[str, float] = {}
    runner, hook = await _receiver(arrivals)
    conn = await asyncpg.connect(profile.database_url)
    completed, webhook = [], []
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(ROUNDS):
                done, hooked = await _round(profile, client, conn, csv, hook, arrivals)
                completed.append(done)
                webhook.append(hooked)
                await asyncio.sleep(1.0)  # let every loop go back to idle
    finally:
        await conn.close()
        await runner.cleanup()
    return completed, webhook


def report(completed: list[float], webhook: list[float]) -> None:
    print(
        f"\nlatency, {IMAGES}-image request on the idle stack ({len(completed)} rounds): "
        f"upload -> completed p50 {statistics.median(completed):.2f}s, "
        f"upload -> webhook p50 {statistics.median(webhook):.2f}s (target <= 0.4 s)"
    )
