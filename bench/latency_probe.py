"""Latency of small requests on an idle stack: upload -> completed, upload -> webhook (issue 14).

Used by pipeline_bench.py while its stack is up and idle. Each round uploads one 10-image request
with a webhook URL on a local receiver; "completed" is the request's completed_at as PostgreSQL
recorded it, "webhook" the moment the receiver got the POST. Rounds run one after another, so
each meets an idle stack; the medians are printed.

Each round is also taken apart hop by hop, from times the pipeline already records: the request
row (ingest's transaction), the Kafka timestamps of its image.requested, image.results and
request.completed messages (set by the producing client when it sends), the request's
completed_at (the tracker's transaction that counted the last image), the webhook delivery row
(the notifier) and the receiver's clock. Everything runs on one host, so the clocks agree.
"""

import asyncio
import json
import statistics
import time
import uuid

import asyncpg
import httpx
from aiohttp import web
from confluent_kafka import Consumer, TopicPartition

ROUNDS = 7
IMAGES = 10
TOPICS = ("image.requested", "image.results", "request.completed")
KAFKA_TIMEOUT = 5.0  # seconds for each metadata or offsets request
READ_SECONDS = 10.0  # longest a round's messages are read for

# (name, what marks the end of the hop), in the order a request passes them.
HOPS = [
    ("accepted", "ingest committed the request (requests.created_at)"),
    ("in Kafka", "the first image.requested produced (ingest's scheduler and outbox relay)"),
    ("first result", "the first image.results produced (compressor: fetch, download, Pillow)"),
    ("last result", "the last image.results produced (compressor)"),
    ("counted", "the tracker's transaction that counted the last image began (completed_at)"),
    ("relayed", "request.completed produced (the tracker's outbox relay)"),
    ("scheduled", "the notifier stored the delivery (webhook_deliveries.created_at)"),
    ("webhook", "the receiver got the POST"),
]


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


class KafkaTimes:
    """Reads the pipeline's topics from a point on, without joining any group (assign only)."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": "latency-probe",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )

    def ends(self) -> dict[tuple[str, int], int]:
        """The high watermark of every partition of the three topics."""
        found = {}
        for topic in TOPICS:
            meta = self._consumer.list_topics(topic, timeout=KAFKA_TIMEOUT).topics[topic]
            for p in meta.partitions:
                tp = TopicPartition(topic, p)
                found[topic, p] = self._consumer.get_watermark_offsets(tp, timeout=KAFKA_TIMEOUT)[1]
        return found

    def times_of(self, request_id: str, since: dict[tuple[str, int], int]) -> dict[str, list[float]]:
        """Timestamps (s) of the request's messages on each topic, written after `since`."""
        until = self.ends()
        left = {k for k, end in until.items() if end > since.get(k, 0)}
        times: dict[str, list[float]] = {t: [] for t in TOPICS}
        if not left:
            return times
        self._consumer.assign([TopicPartition(t, p, since.get((t, p), 0)) for t, p in left])
        deadline = time.monotonic() + READ_SECONDS
        while left and time.monotonic() < deadline:  # at most until[k] - since[k] messages each
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            key = (msg.topic(), msg.partition())
            if msg.offset() + 1 >= until.get(key, 0):
                left.discard(key)
            if json.loads(msg.value() or b"{}").get("request_id") == request_id:
                times[msg.topic()].append(msg.timestamp()[1] / 1000)
        self._consumer.unassign()
        return times

    def close(self) -> None:
        self._consumer.close()


async def _hops(conn, kafka: KafkaTimes, request_id: str, since, started: float, hooked: float):
    """Seconds from the upload to the end of each hop (None: not seen)."""
    rid = uuid.UUID(request_id)
    req = await conn.fetchrow("SELECT created_at, completed_at FROM requests WHERE request_id = $1", rid)
    scheduled = await conn.fetchval(
        "SELECT min(created_at) FROM webhook_deliveries WHERE request_id = $1", rid
    )
    times = await asyncio.to_thread(kafka.times_of, request_id, since)
    requested, results, completed = (sorted(times[t]) for t in TOPICS)
    ends = [
        req["created_at"].timestamp(),
        requested[0] if requested else None,
        results[0] if results else None,
        results[-1] if results else None,
        req["completed_at"].timestamp(),
        completed[0] if completed else None,
        scheduled.timestamp() if scheduled else None,
        hooked,
    ]
    return [None if end is None else end - started for end in ends]


async def _round(profile, client: httpx.AsyncClient, conn, kafka, csv: bytes, hook: str, arrivals):
    since = await asyncio.to_thread(kafka.ends)
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
    hops = await _hops(conn, kafka, request_id, since, started, arrivals[request_id])
    return completed.timestamp() - started, arrivals[request_id] - started, hops


async def measure(profile, csv: bytes) -> tuple[list[float], list[float], list[list[float | None]]]:
    """(upload -> completed, upload -> webhook, the end of each hop) seconds of each round."""
    arrivals: dict[str, float] = {}
    runner, hook = await _receiver(arrivals)
    conn = await asyncpg.connect(profile.database_url)
    kafka = KafkaTimes(profile.bootstrap_servers)
    completed, webhook, hops = [], [], []
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(ROUNDS):
                done, hooked, ends = await _round(profile, client, conn, kafka, csv, hook, arrivals)
                completed.append(done)
                webhook.append(hooked)
                hops.append(ends)
                await asyncio.sleep(1.0)  # let every loop go back to idle
    finally:
        kafka.close()
        await conn.close()
        await runner.cleanup()
    return completed, webhook, hops


def hop_medians(hops: list[list[float | None]]) -> list[float | None]:
    """Per hop, the median of its own length (end minus the previous hop's end) over the rounds."""
    lengths: list[list[float]] = [[] for _ in HOPS]
    for ends in hops:
        previous: float | None = 0.0
        for i, end in enumerate(ends):
            if end is not None and previous is not None:
                lengths[i].append(end - previous)
            previous = end
    return [statistics.median(values) if values else None for values in lengths]


def report(
    completed: list[float], webhook: list[float], hops: list[list[float | None]] | None = None
) -> None:
    print(
        f"\nlatency, {IMAGES}-image request on the idle stack ({len(completed)} rounds): "
        f"upload -> completed p50 {statistics.median(completed):.2f}s, "
        f"upload -> webhook p50 {statistics.median(webhook):.2f}s (target <= 0.4 s)"
    )
    if not hops:
        return
    print("  hop by hop, p50 of each hop's own length (ms):")
    for (name, what), length in zip(HOPS, hop_medians(hops), strict=True):
        shown = "   n/a" if length is None else f"{1000 * length:6.0f}"
        print(f"    {shown}  -> {name:<13} {what}")
