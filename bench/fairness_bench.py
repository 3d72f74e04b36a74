"""Small requests behind a big one: FIFO (everything enters Kafka at upload) against fair admission.

For each policy (INGEST_SCHEDULER_POLICY=fifo, then fair) the `test` stack is started and:
1. a 10-image request runs alone: the idle upload-to-completed time;
2. a big request of mixed sizes (BENCH_FAIR_BIG images, default 3000) runs alone: its rate;
3. the same big request again, with a 10-image request of another tenant uploaded every
   BENCH_FAIR_EVERY seconds (default 10) while it runs: each small request's upload-to-completed
   time (target with `fair`: p95 <= 2 s) and the big request's rate against step 2 (target >= 95 %).
Finally the big request's rate under `fair` against `fifo` (the scheduler's cost on throughput).
Completion times are read from PostgreSQL (completed_at), so polling does not bias them.
"""

# No `from __future__ import annotations`: bench/run.py loads this file without registering it.

import asyncio
import io
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
from aiohttp import web
from PIL import Image

BIG = int(os.environ.get("BENCH_FAIR_BIG", "3000"))
EVERY = float(os.environ.get("BENCH_FAIR_EVERY", "10"))
SMALL = 10
SIZES = [(800, 800), (1000, 750), (1200, 1200), (1600, 1200), (2000, 1500), (640, 480)]


def photo(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG: smooth gradients plus noise, so it compresses like a product shot."""
    base = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 40 + seed % 30).convert("RGB")
    out = io.BytesIO()
    Image.blend(base, noise, 0.35).save(out, "JPEG", quality=90)
    return out.getvalue()


@contextmanager
def image_server() -> Iterator[str]:
    """aiohttp on 127.0.0.1 on its own thread; /img/N.jpg?anything serves image N % len(SIZES)."""
    images = [photo(w, h, n) for n, (w, h) in enumerate(SIZES)]
    ready: dict[str, str] = {}
    started, stop = threading.Event(), threading.Event()

    async def one(request: web.Request) -> web.Response:
        n = int(request.match_info["n"]) % len(images)
        return web.Response(body=images[n], content_type="image/jpeg")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/img/{n:\\d+}.jpg", one)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ready["base"] = f"http://127.0.0.1:{runner.addresses[0][1]}/img"
        started.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="bench-images", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("image server did not start")
    try:
        yield ready["base"]
    finally:
        stop.set()
        thread.join(10)


def catalogue(base: str, images: int, tag: str) -> bytes:
    rows = [f"{n},{tag} {n},{base}/{n}.jpg?{tag}={n}" for n in range(1, images + 1)]
    return ("S. No.,Product Name,Input Image Urls\n" + "\n".join(rows) + "\n").encode()


@dataclass
class Stack:
    profile: object
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.profile.ingest_port}"  # type: ignore[attr-defined]


def start_stack(policy: str) -> Stack:
    from devstack import services
    from devstack.__main__ import infra_up
    from devstack.profiles import PROFILES

    profile = PROFILES["test"]
    infra_up(profile)
    services.stop_all(profile)
    services.start_all(profile, {"LOG_LEVEL": "WARNING", "INGEST_SCHEDULER_POLICY": policy})
    return Stack(profile)


async def tenant_key(stack: Stack, client: httpx.AsyncClient, tenant: str) -> str:
    if tenant not in stack.keys:
        resp = await client.post(
            f"{stack.ingest}/keys",
            json={"tenant_id": tenant, "scopes": ["upload", "read"]},
            headers={"Authorization": f"Bearer {stack.profile.api_key()}"},  # type: ignore[attr-defined]
        )
        resp.raise_for_status()
        stack.keys[tenant] = resp.json()["key"]
    return stack.keys[tenant]


async def upload(stack: Stack, client: httpx.AsyncClient, csv: bytes, tenant: str) -> tuple[uuid.UUID, float]:
    key = await tenant_key(stack, client, tenant)
    started = time.time()
    resp = await client.post(
        f"{stack.ingest}/upload",
        files={"file": ("bench.csv", csv, "text/csv")},
        headers={"Authorization": f"Bearer {key}"},
    )
    resp.raise_for_status()
    return uuid.UUID(resp.json()["request_id"]), started


async def completed_after(conn: asyncpg.Connection, rid: uuid.UUID, started: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = await conn.fetchval("SELECT completed_at FROM requests WHERE request_id = $1", rid)
        if done is not None:
            return done.timestamp() - started
        await asyncio.sleep(0.1)
    raise TimeoutError(f"request {rid} not completed in {timeout:.0f}s")


@dataclass
class PolicyRun:
    idle: float
    alone_rate: float
    mixed_rate: float
    small: list[float]


async def run_policy(stack: Stack, base: str) -> PolicyRun:
    conn = await asyncpg.connect(stack.profile.database_url)  # type: ignore[attr-defined]
    try:
        async with httpx.AsyncClient(timeout=300) as client:
            rid, t0 = await upload(stack, client, catalogue(base, SMALL, "idle"), "small")
            idle = await completed_after(conn, rid, t0, 120)
            rid, t0 = await upload(stack, client, catalogue(base, BIG, "alone"), "big")
            alone = await completed_after(conn, rid, t0, 3600)
            mixed, small = await big_with_smalls(stack, client, conn, base)
    finally:
        await conn.close()
    return PolicyRun(idle, BIG / alone, BIG / mixed, small)


async def big_with_smalls(
    stack: Stack, client: httpx.AsyncClient, conn: asyncpg.Connection, base: str
) -> tuple[float, list[float]]:
    """completed_at is recorded by the tracker: reading it after the big one ends loses nothing."""
    big, t0 = await upload(stack, client, catalogue(base, BIG, "mixed"), "big")
    smalls: list[tuple[uuid.UUID, float]] = []
    first = min(EVERY, 3.0)  # the first small request a few seconds in, then one every EVERY s
    while len(smalls) < 1000:  # bounded whatever happens
        await asyncio.sleep(EVERY if smalls else first)
        if await conn.fetchval("SELECT completed_at FROM requests WHERE request_id = $1", big) is not None:
            break
        smalls.append(await upload(stack, client, catalogue(base, SMALL, f"s{len(smalls)}x"), "small"))
    mixed = await completed_after(conn, big, t0, 3600)
    return mixed, [await completed_after(conn, rid, started, 600) for rid, started in smalls]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(runs: dict[str, PolicyRun]) -> None:
    print(
        f"big request: {BIG} images of {len(SIZES)} sizes (640x480 to 2000x1500); a {SMALL}-image request"
        f" of another tenant every {EVERY:.0f} s while it runs"
    )
    for policy, run in runs.items():
        s = run.small
        print(f"\n[{policy}]")
        print(f"  small request alone (idle):        {run.idle:6.2f} s upload to completed")
        if s:
            print(
                f"  small requests behind the big one: n={len(s)}  p50 {statistics.median(s):6.2f} s"
                f"  p95 {percentile(s, 0.95):6.2f} s  max {max(s):6.2f} s"
            )
        print(f"  big request alone:                 {run.alone_rate:6.1f} images/s")
        print(
            f"  big request with the small ones:   {run.mixed_rate:6.1f} images/s"
            f" ({run.mixed_rate / run.alone_rate:.0%} of alone; target >= 95 % with fair)"
        )
    if {"fifo", "fair"} <= runs.keys():
        fair, fifo = runs["fair"], runs["fifo"]
        print(f"\nbig request alone, fair / fifo: {fair.alone_rate / fifo.alone_rate:.0%} of FIFO's rate")
        if fair.small and fifo.small:
            print(
                f"small-request p95 behind the big one: fifo {percentile(fifo.small, 0.95):.2f} s"
                f" -> fair {percentile(fair.small, 0.95):.2f} s (target <= 2 s)"
            )


def main() -> None:
    from devstack import services
    from devstack.outputs import outputs_removed

    runs: dict[str, PolicyRun] = {}
    with image_server() as base:
        for policy in os.environ.get("BENCH_FAIR_POLICIES", "fifo,fair").split(","):
            stack = start_stack(policy)
            with outputs_removed(stack.profile.media_dir):  # once its services have stopped
                try:
                    runs[policy] = asyncio.run(run_policy(stack, base))
                finally:
                    services.stop_all(stack.profile)
    report(runs)


if __name__ == "__main__":
    main()
