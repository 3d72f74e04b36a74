"""Drive the cluster profile: start it, send an N-image request, inject a fault, check the outcome.

Shared by the cluster smoke test (tests/cluster/test_cluster.py, part of the suite) and
`make cluster-chaos` (tests/cluster/chaos.py, a script: too heavy for every run).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.kafka_topics import read_topic
from tests.support.servers import LocalServer, wait_until

# The same fast retries the single-node suite uses (tests/conftest.py), so faults settle quickly.
SERVICE_ENV = {
    "LOG_LEVEL": "INFO",
    "NOTIFIER_RETRY_SCHEDULE": "[0.3, 0.5, 0.5, 1]",
    "NOTIFIER_REQUEST_TIMEOUT": "1.5",
    "NOTIFIER_DISPATCH_IDLE_SECONDS": "0.2",
    "COMPRESSOR_RETRY_BASE_SECONDS": "0.2",
    "COMPRESSOR_RETRY_MAX_SECONDS": "2",
    "INGEST_UPLOAD_RATE_PER_MINUTE": "6000",
    "INGEST_UPLOAD_BURST": "1000",
}

Fault = Callable[[], Awaitable[None]]


def profile():
    from devstack.profiles import PROFILES

    return PROFILES["cluster"]


def start_cluster() -> float:
    """Bring the whole cluster profile up (idempotent); answers the seconds it took."""
    from devstack import services
    from devstack.__main__ import infra_up

    began = time.monotonic()
    infra_up(profile())
    services.start_all(profile(), SERVICE_ENV)
    return time.monotonic() - began


def stop_cluster() -> None:
    from devstack.__main__ import down

    down(profile())


async def image_origin(count: int) -> LocalServer:
    """The image origin, on the bridge address: the only place the compressor hosts can reach."""
    from devstack.profiles import BRIDGE_ADDRESS

    server = LocalServer(host=BRIDGE_ADDRESS)
    for n in range(count):
        server.files[f"i/{n}.jpg"] = photo_jpeg(160 + n % 7 * 16, 120 + n % 5 * 16, seed=n)
    return await server.start()


def request_csv(origin: LocalServer, count: int) -> bytes:
    rows = [
        (n + 1, f"Item {n + 1}", [origin.url(f"i/{n * 2}.jpg"), origin.url(f"i/{n * 2 + 1}.jpg")])
        for n in range(count // 2)
    ]
    return csv_of(rows)


async def processed(status_url: str, headers: dict[str, str]) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        resp = await client.get(status_url)
    body = resp.json() if resp.status_code == 200 else {}
    return body.get("processed_images", 0) + body.get("failed_images", 0)


async def run_request(
    name: str,
    count: int,
    origin: LocalServer,
    subscriber: LocalServer,
    *,
    fault: Fault | None = None,
    fault_after: int = 0,
    timeout: float = 600,
) -> dict:
    """Upload `count` images with a webhook; inject `fault` once `fault_after` are processed
    (before the upload when 0); wait for the end and check every image was done exactly once."""
    p = profile()
    key = bearer(p.api_key())
    ingest = f"http://127.0.0.1:{p.ingest_port}"
    hook = f"hook-{uuid.uuid4().hex[:8]}"
    subscriber.routes.setdefault(hook, _ok)
    began = time.monotonic()
    fault_task = None
    if fault and not fault_after:
        await fault()
    accepted = await upload_csv(
        ingest, request_csv(origin, count), headers=key, webhook_url=subscriber.url(hook)
    )
    if fault and fault_after:

        async def started() -> bool:
            return await processed(accepted["status_url"], key) >= fault_after

        await wait_until(started, timeout=timeout)
        fault_task = asyncio.create_task(fault())
    status = await wait_for_completion(accepted["status_url"], timeout=timeout, headers=key)
    took = time.monotonic() - began
    if fault_task:
        await fault_task
    return await verify(name, count, accepted, status, subscriber, hook, took)


async def _ok(_request):
    from aiohttp import web

    return web.Response(status=200)


async def verify(
    name: str, count: int, accepted: dict, status: dict, subscriber: LocalServer, hook: str, took: float
) -> dict:
    p = profile()
    request_id = uuid.UUID(accepted["request_id"])
    conn = await asyncpg.connect(p.database_url)
    try:
        done = await conn.fetchval(
            "SELECT count(*) FROM images WHERE request_id = $1 AND status = 'done'", request_id
        )
        req = await conn.fetchrow("SELECT * FROM requests WHERE request_id = $1", request_id)

        async def delivered() -> bool:
            state = await conn.fetchval(
                "SELECT string_agg(status, ',') FROM webhook_deliveries WHERE request_id = $1", request_id
            )
            return state == "delivered"

        settled = await wait_until(delivered, timeout=90)
    finally:
        await conn.close()
    results = [
        json.loads(v)
        for k, v in await asyncio.to_thread(read_topic, p.bootstrap_servers, "image.results", timeout=60)
        if k == str(request_id).encode()
    ]
    per_image = Counter(r["image_id"] for r in results)
    webhook_ids = {h.headers.get("webhook-id") for h in subscriber.hits(hook)}
    checks = {
        "status completed": status.get("status") == "completed",
        "every image done once": done == count == req["processed_images"] and req["failed_images"] == 0,
        "every image has a result": len(per_image) == count,
        "one webhook id": len(webhook_ids) == 1,
        "delivered": settled,
    }
    failed = [check for check, ok in checks.items() if not ok]
    return {
        "fault": name,
        "images expected": count,
        "images done": done,
        "duplicates counted": req["processed_images"] + req["failed_images"] - done,
        "redundant events ignored": sum(per_image.values()) - len(per_image),
        "webhook ids delivered": len(webhook_ids),
        "seconds": round(took, 1),
        "outcome": "ok" if not failed else "FAILED: " + ", ".join(failed),
        "outputs": results,
        "output_csv_url": accepted["output_csv_url"],
    }


def busiest_leader(topic: str = "image.requested") -> int:
    """The node leading most of `topic`'s partitions."""
    from devstack import kafka_cluster

    leaders = Counter(kafka_cluster.partition_leaders(profile().bootstrap_servers, topic).values())
    return leaders.most_common(1)[0][0]


async def wait_fully_replicated(timeout: float = 120) -> bool:
    """Until every partition has all its replicas in sync again (a restarted broker caught up)."""
    from devstack import kafka_cluster

    async def whole() -> bool:
        try:
            return not await asyncio.to_thread(kafka_cluster.under_replicated, profile().bootstrap_servers)
        except Exception:  # noqa: BLE001 - metadata unavailable mid-election: not whole yet
            return False

    return await wait_until(whole, timeout=timeout, interval=1.0)


# The faults: each returns when the fault is over and the part it hit is back.


def kill_broker(pick: Callable[[], int], down_seconds: float = 15.0) -> Fault:
    """kill -9 the broker `pick` names, keep it down a while, start it again."""

    async def fault() -> None:
        from devstack import kafka, procs

        node = await asyncio.to_thread(pick)
        await asyncio.to_thread(procs.kill_hard, profile().run_dir, kafka.node_name(profile(), node))
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(kafka.start_node, profile(), node)

    return fault


def active_controller() -> int:
    from devstack import kafka_cluster

    leader = kafka_cluster.quorum_leader(profile())
    assert leader is not None, "no quorum leader recorded by any node"
    return leader


def cut_host_link(host: int, seconds: float = 30.0) -> Fault:
    async def fault() -> None:
        from devstack import netns

        await asyncio.to_thread(netns.set_link, host, "down")
        await asyncio.sleep(seconds)
        await asyncio.to_thread(netns.set_link, host, "up")

    return fault


def kill_host(host: int, down_seconds: float = 10.0) -> Fault:
    """kill -9 every process in the host's namespace (a host that dies), then boot it again."""

    async def fault() -> None:
        from devstack import netns, services

        await asyncio.to_thread(netns.kill_all, host)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(services.start_one, profile(), f"compressor-{host}")

    return fault


def restart_object_store(down_seconds: float = 3.0) -> Fault:
    async def fault() -> None:
        from devstack import s3store

        await asyncio.to_thread(s3store.stop, profile())
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(s3store.start, profile())

    return fault
