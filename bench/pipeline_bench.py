"""Images per second through the whole pipeline, against raw Pillow on the same images (issue 4).

At least 500 product images of mixed sizes (800x800 to 4000x3000 RGB JPEGs, plus CMYK JPEGs and
PNG cut-outs with alpha) are served over local HTTP and uploaded as one CSV to the `test` stack
(Kafka, PostgreSQL and every service as processes, started through devstack). After a warm-up,
the set is uploaded BENCH_REQUESTS times (3) in a row, the clock running from each upload to that
request's completion. Before, between and after the requests, the same images are decoded and
encoded at quality 50 by plain Pillow in as many processes as there are cores, from memory, with
every process of the stack stopped meanwhile (SIGSTOP, in pauses of RAW_CHUNK images, short of the
10 s Kafka session): raw Pillow runs alone, side by side with the pipeline in time. Each request is
compared with the mean of the raw runs just before and just after it, because this machine's
speed drifts by 10-20% over minutes (the same pure-Python loop on both cores took 145-192 ms
within 150 s), more than the differences measured. The ratios of the pipeline's rate and CPU per
image to raw Pillow's are the figures of merit (issue 14: 0.9 on 2 cores, and CPU per image at
most 1.12x raw Pillow's), and the CPU time of every process during the requests shows where the
rest goes.

Settings (environment): BENCH_IMAGES (default 500), BENCH_COMPRESSOR_ENV (JSON of COMPRESSOR_*
overrides, to compare pool kinds and sizes), BENCH_MEMBERS (compressor members; default: what
`make up` starts on this machine), BENCH_WARM_UP_IMAGES (images processed before the measured
requests, in requests of the set; default 1000), BENCH_REQUESTS (measured requests; default 3).
Images are cached under .run/bench-images/VERSION.
"""

# No `from __future__ import annotations`: bench/run.py loads this file without registering it
# in sys.modules, which dataclasses need to resolve string annotations. For the same reason the
# worker processes are forked with their function (nothing is pickled by reference).

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import asyncpg
import httpx
from aiohttp import web
from PIL import Image

from bench import latency_probe

REPO = Path(__file__).resolve().parents[1]
VERSION = "v1"  # bump when the generators or the mix change: the cache is keyed by it
CACHE = REPO / ".run" / "bench-images" / VERSION
COUNT = int(os.environ.get("BENCH_IMAGES", "500"))
CORES = os.cpu_count() or 2
TARGET_RATIO = 0.9  # issue 14: rates, pipeline to raw Pillow
TARGET_CPU = 1.12  # issue 14: CPU per image of every pipeline process, to raw Pillow's
JPEG_SIZES = [
    (800, 800),
    (1000, 1000),
    (1200, 1200),
    (1600, 1200),
    (1500, 1500),
    (2000, 2000),
    (2400, 1800),
    (3000, 2000),
    (3200, 2400),
    (4000, 3000),
]
PNG_SIZES = [(800, 800), (1000, 1000), (1200, 1200), (1600, 1600)]
URLS_PER_PRODUCT = 5
# Steady state, as a running service is. On a fresh stack the cost outside Pillow falls over the
# first thousand images or so: 9.4, 8.8, 7.2, 7.0 and 7.3 ms per image in five 500-image requests
# in a row, the broker most (2.0 -> 0.8 ms), then the tracker workers and PostgreSQL. The warm-up
# is not measured.
WARM_UP_IMAGES = int(os.environ.get("BENCH_WARM_UP_IMAGES", "1000"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "0"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3"))  # measured requests of the set, in a row


# --- the images ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # jpeg | cmyk | png
    width: int
    height: int
    seed: int


def plan(count: int) -> list[Spec]:
    """Every 10th image a CMYK JPEG, every 10th (offset 5) a PNG cut-out, the rest RGB JPEGs."""
    specs = []
    for n in range(count):
        if n % 10 == 3:
            kind, (w, h) = "cmyk", JPEG_SIZES[(n // 10) % len(JPEG_SIZES)]
        elif n % 10 == 8:
            kind, (w, h) = "png", PNG_SIZES[(n // 10) % len(PNG_SIZES)]
        else:
            kind, (w, h) = "jpeg", JPEG_SIZES[n % len(JPEG_SIZES)]
        extension = "png" if kind == "png" else "jpg"
        specs.append(Spec(f"{n:04d}-{kind}-{w}x{h}.{extension}", kind, w, h, seed=n))
    return specs


def _generate(specs: list[Spec]) -> None:
    from tests.support import images

    makers = {
        "jpeg": images.product_photo_jpeg,
        "cmyk": images.product_cmyk_jpeg,
        "png": images.product_cutout_png,
    }
    for spec in specs:
        path = CACHE / spec.name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(makers[spec.kind](spec.width, spec.height, spec.seed))
        tmp.replace(path)


def ensure_images(specs: list[Spec]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    missing = [s for s in specs if not (CACHE / s.name).exists()]
    if not missing:
        return
    print(f"generating {len(missing)} images into {CACHE} (once; cached by version)...", flush=True)
    started = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_generate, args=(missing[k::CORES],)) for k in range(CORES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"image generation failed (exit code {worker.exitcode})")
    print(f"  generated in {time.monotonic() - started:.0f}s", flush=True)


def describe(specs: list[Spec]) -> str:
    kinds = {k: sum(s.kind == k for s in specs) for k in ("jpeg", "cmyk", "png")}
    pixels = [s.width * s.height / 1e6 for s in specs]
    size = sum((CACHE / s.name).stat().st_size for s in specs) / 1e6
    return (
        f"{len(specs)} images: {kinds['jpeg']} RGB JPEG, {kinds['cmyk']} CMYK JPEG, {kinds['png']} RGBA PNG; "
        f"{min(pixels):.2f}-{max(pixels):.1f} MP (mean {statistics.mean(pixels):.2f} MP), {size:.0f} MB"
    )


# --- raw Pillow ------------------------------------------------------------------------


def _raw_worker(names: list[str], barrier, results) -> None:
    blobs = [(CACHE / name).read_bytes() for name in names]  # I/O before the clock starts
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    for blob in blobs:
        image = Image.open(BytesIO(blob))
        image.load()
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(BytesIO(), "JPEG", quality=50)
    results.put((time.perf_counter() - started, time.process_time() - cpu_started))


def shares_of(specs: list[Spec], workers: int) -> list[list[str]]:
    """The images split into `workers` shares of about equal pixels: each next largest to the lightest.

    Every other image (specs[k::2]) gave one worker 502 MP of the set and the other 1356 MP, so raw
    Pillow's wall clock was the heavier one's and its rate a third below what two cores do.
    """
    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for spec in sorted(specs, key=lambda s: -s.width * s.height):
        lightest = loads.index(min(loads))
        shares[lightest].append(spec.name)
        loads[lightest] += spec.width * spec.height
    return shares


def raw_pillow(specs: list[Spec]) -> tuple[float, float, float]:
    """Decode + encode at quality 50 in one process per core, each given an equal share of pixels.

    Answers the wall-clock seconds (until the last worker is done), the workers' CPU seconds and
    the CPU seconds of the whole machine meanwhile.
    """
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(CORES), ctx.Queue()
    workers = [
        ctx.Process(target=_raw_worker, args=(share, barrier, results)) for share in shares_of(specs, CORES)
    ]
    for worker in workers:
        worker.start()
    busy = machine_busy()
    timings = [results.get(timeout=1800) for _ in workers]
    busy = machine_busy() - busy
    for worker in workers:
        worker.join()
    return max(wall for wall, _ in timings), sum(cpu for _, cpu in timings), busy


@dataclass
class RawRun:
    """Raw Pillow over the whole set: seconds of wall clock, workers' CPU seconds, machine's CPU seconds."""

    seconds: float
    cpu: float
    machine: float

    @staticmethod
    def mean(a: "RawRun", b: "RawRun") -> "RawRun":
        return RawRun((a.seconds + b.seconds) / 2, (a.cpu + b.cpu) / 2, (a.machine + b.machine) / 2)


RAW_CHUNK = 100  # images per pause: about 2.5-4 s here, well short of the 10 s Kafka sessions
RESUMED_SECONDS = 1.5  # between pauses, long enough for every member's heartbeat (every 3 s)


def stack_pids(profile) -> list[int]:
    """Every process of the stack: the services, PostgreSQL, Kafka and their children (not the bench)."""
    roots = [pid for pid in stack_roots(profile).values() if pid != os.getpid()]
    table = _processes()
    pids, stack = [], list(roots)
    while stack:
        pid = stack.pop()
        if pid in table and pid not in pids:
            pids.append(pid)
            stack += [child for child, (parent, _) in table.items() if parent == pid]
    return pids


@contextmanager
def stack_stopped(profile) -> Iterator[None]:
    """The stack's processes stopped (SIGSTOP) meanwhile, and continued after, whatever happens."""
    stopped = []
    try:
        for pid in stack_pids(profile):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def raw_alongside(profile, specs: list[Spec]) -> RawRun:
    """Raw Pillow over the set while the stack is stopped, RAW_CHUNK images per pause.

    The chunks take every k-th image, so each holds the set's mix; the stack runs again between
    them, so that no Kafka session (10 s) expires.
    """
    chunks = -(-len(specs) // RAW_CHUNK)
    total = RawRun(0.0, 0.0, 0.0)
    for k in range(chunks):
        chunk = specs[k::chunks]
        with stack_stopped(profile):
            seconds, cpu, machine = raw_pillow(chunk)
        total = RawRun(total.seconds + seconds, total.cpu + cpu, total.machine + machine)
        time.sleep(RESUMED_SECONDS)
    return total


# --- serving the images over HTTP --------------------------------------------------------


@contextmanager
def image_server() -> Iterator[str]:
    """aiohttp on 127.0.0.1 serving the cache by sendfile, on its own thread and loop."""
    ready: dict[str, object] = {}
    started = threading.Event()
    stop = threading.Event()

    async def serve() -> None:
        app = web.Application()
        app.router.add_static("/img/", CACHE)
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
        yield str(ready["base"])
    finally:
        stop.set()
        thread.join(10)


# --- CPU accounting --------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc stat file after the command name (which may hold spaces)."""
    return stat.read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry / "stat")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), _cpu_seconds(fields))
    return table


def machine_busy() -> float:
    """CPU seconds every process of the machine has used (all cores, since boot)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def cpu_by_component(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named service process and its live descendants.

    Services are started in sessions of their own, so one service's tree never holds another's.
    The bench process counts alone: the stack's processes are its children too.
    """
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    usage = {}
    for name, root in roots.items():
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            if pid in table:
                total += table[pid][1]
                if pid != os.getpid():
                    stack += children.get(pid, [])
        usage[name] = total
    return usage


def stack_roots(profile) -> dict[str, int]:
    from devstack import postgres, procs

    roots = {f"own:{name}": pid for name, pid in procs.running(profile.run_dir).items()}
    postmaster = postgres.postmaster_pid(profile)
    if postmaster is not None:
        roots["own:postgres"] = postmaster
    roots["own:bench (image server, client)"] = os.getpid()
    return roots


def group(usage: dict[str, float]) -> dict[str, float]:
    """Members of one service together; the compressor split into its members and its Pillow workers."""
    grouped: dict[str, float] = {}
    for name, seconds in usage.items():
        short = name.removeprefix("own:")
        for prefix in ("compressor", "tracker-worker"):
            if short.startswith(prefix):
                short = f"{prefix}s"
        grouped[short] = grouped.get(short, 0.0) + seconds
    return grouped


PILLOW_THREAD = "pillow_"  # how a member's Pillow threads are named for the OS (compressor/threadnames.py)


def _pillow_threads_cpu(pid: int) -> float:
    """CPU seconds so far of a member's Pillow threads (with the thread pool; 0 with processes)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if not (task / "comm").read_text().startswith(PILLOW_THREAD):
                continue
            fields = _stat_fields(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += _cpu_seconds(fields)
    return total


def compressor_split(profile_roots: dict[str, int]) -> tuple[float, float, float]:
    """(members' own CPU, their Pillow threads' CPU, their Pillow pool processes' CPU) so far."""
    table = _processes()
    own = threads = workers = 0.0
    for name, pid in profile_roots.items():
        if not name.startswith("own:compressor"):
            continue
        pillow = _pillow_threads_cpu(pid)
        own += table.get(pid, (0, 0.0))[1] - pillow
        threads += pillow
        workers += sum(cpu for child, (parent, cpu) in table.items() if parent == pid)
    return own, threads, workers


# --- the pipeline run ------------------------------------------------------------------


def start_stack(env: dict[str, str]):
    from devstack import services
    from devstack.__main__ import infra_up
    from devstack.profiles import PROFILES

    # The test stack's ports and directory, with as many members as `make up` starts here (the
    # test profile itself fixes two, for the tests), or BENCH_MEMBERS to compare.
    profile = dataclasses.replace(PROFILES["test"], compressor_members=members())
    infra_up(profile)
    services.stop_all(profile)
    services.start_all(profile, {"LOG_LEVEL": "INFO", **env})
    from devstack.services import TRACKER_WORKERS

    wait_for_group(profile, "compressor", members())
    # The Faust workers start slower than the compressors (imports, two rebalances): without this
    # their start-up CPU was counted as the tracker's cost of the images, and they joined mid-run.
    wait_for_group(profile, "tracker", TRACKER_WORKERS)
    return profile


def run_measuring_tool(
    parser: argparse.ArgumentParser, measure: Callable[[argparse.Namespace], None]
) -> None:
    """A measuring tool's `main` after its own arguments: `--keep` added, then `measure(args)`.

    On the way out the `test` stack is stopped (unless `--keep`), and only then are the outputs
    its requests stored removed, so that no late write is left behind.
    """
    from devstack.__main__ import down
    from devstack.outputs import outputs_removed
    from devstack.profiles import PROFILES

    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args()
    profile = PROFILES["test"]
    with outputs_removed(profile.media_dir):
        try:
            measure(args)
        finally:
            if not args.keep:
                down(profile)


def wait_for_group(profile, group_id: str, members: int, timeout: float = 60.0) -> None:
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": profile.bootstrap_servers})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            group = admin.describe_consumer_groups([group_id])[group_id].result(10)
            if group.state == ConsumerGroupState.STABLE and len(group.members) == members:
                return
        except Exception:  # noqa: BLE001 - not formed yet
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the {group_id} group did not settle")


def product_csv(base: str, specs: list[Spec]) -> bytes:
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row, start in enumerate(range(0, len(specs), URLS_PER_PRODUCT), 1):
        urls = ",".join(f"{base}/{s.name}" for s in specs[start : start + URLS_PER_PRODUCT])
        lines.append(f'{row},Product {row},"{urls}"')
    return ("\n".join(lines) + "\n").encode()


async def upload_and_wait(profile, csv: bytes, timeout: float = 1800.0) -> tuple[float, dict]:
    """Seconds from the upload to the request's completion (as PostgreSQL records it), and its counts.

    The database is polled rather than the status API, so that the polling costs next to nothing
    and the completion time does not depend on the polling interval.
    """
    conn = await asyncpg.connect(profile.database_url)
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            started = time.time()
            resp = await client.post(
                f"http://127.0.0.1:{profile.ingest_port}/upload",
                files={"file": ("bench.csv", csv, "text/csv")},
                headers={"Authorization": f"Bearer {profile.api_key()}"},
            )
            resp.raise_for_status()
        request_id = uuid.UUID(resp.json()["request_id"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await conn.fetchrow(
                "SELECT status, processed_images, failed_images, completed_at FROM requests"
                " WHERE request_id = $1",
                request_id,
            )
            if row and row["completed_at"] is not None:
                return row["completed_at"].timestamp() - started, dict(row)
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise TimeoutError(f"request {request_id} not completed in {timeout}s")


@dataclass
class PipelineRun:
    seconds: float
    status: dict
    cpu: dict[str, float]
    members_cpu: float
    pillow_threads_cpu: float
    pillow_cpu: float
    machine_cpu: float


@dataclass
class Measured:
    """Every measured pipeline request, and the latency probe's figures."""

    runs: list[PipelineRun]
    raws: list[RawRun] = dataclasses.field(default_factory=list)  # before, between and after the runs
    latency: tuple[list[float], list[float]] = ([], [])

    def baselines(self) -> list[RawRun]:
        """Raw Pillow for each request: the mean of the raw runs just before and just after it."""
        return [RawRun.mean(a, b) for a, b in zip(self.raws, self.raws[1:], strict=False)]


def measure_request(profile, base: str, specs: list[Spec]) -> PipelineRun:
    roots = stack_roots(profile)
    before, split_before = cpu_by_component(roots), compressor_split(roots)
    busy_before = machine_busy()
    seconds, status = asyncio.run(upload_and_wait(profile, product_csv(base, specs)))
    busy = machine_busy() - busy_before
    after, split_after = cpu_by_component(roots), compressor_split(roots)
    cpu = group({name: after[name] - before.get(name, 0.0) for name in after})
    members, threads, workers = (a - b for a, b in zip(split_after, split_before, strict=True))
    return PipelineRun(seconds, status, cpu, members, threads, workers, busy)


def run_pipeline(specs: list[Spec], env: dict[str, str]) -> Measured:
    """Warm up, then REQUESTS requests of the set in a row, raw Pillow before, between and after them.

    Raw Pillow runs with the stack stopped: with the stack up, even idle between requests, it took
    4-8% more CPU per image than with nothing else running (38.1 and 40.4 against 36.6 and 37.3 ms,
    two runs), which would flatter the pipeline.
    """
    from devstack import services
    from devstack.outputs import outputs_removed

    profile = start_stack(env)
    with outputs_removed(profile.media_dir):  # once the services have stopped: no write comes after
        try:
            with image_server() as base:
                for start in range(0, WARM_UP_IMAGES, len(specs)):  # requests of the set at most
                    warm = specs[: min(len(specs), WARM_UP_IMAGES - start)]
                    asyncio.run(upload_and_wait(profile, product_csv(base, warm)))
                measured = Measured([], [raw_alongside(profile, specs)])
                for _ in range(REQUESTS):
                    measured.runs.append(measure_request(profile, base, specs))
                    measured.raws.append(raw_alongside(profile, specs))
                measured.latency = asyncio.run(
                    latency_probe.measure(profile, product_csv(base, specs[: latency_probe.IMAGES]))
                )
        finally:
            services.stop_all(profile)
    return measured


def combined(runs: list[PipelineRun]) -> PipelineRun:
    """The measured requests as one: their seconds and CPU added up."""
    cpu: dict[str, float] = {}
    for run in runs:
        for name, seconds in run.cpu.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    status = {
        "status": ", ".join(sorted({str(run.status["status"]) for run in runs})),
        "processed_images": sum(run.status["processed_images"] for run in runs),
        "failed_images": sum(run.status["failed_images"] for run in runs),
    }
    return PipelineRun(
        sum(run.seconds for run in runs),
        status,
        cpu,
        sum(run.members_cpu for run in runs),
        sum(run.pillow_threads_cpu for run in runs),
        sum(run.pillow_cpu for run in runs),
        sum(run.machine_cpu for run in runs),
    )


# --- report ----------------------------------------------------------------------------


BENCH_ITSELF = "bench (image server, client)"
OWN_WORK = "compressor: own work (download, store, claims, events, logs, metrics)"
# Issue 14's budget per image outside Pillow, in ms: (row, budget).
BUDGET = {
    "the compressor's own work": (OWN_WORK, 2.0),
    "the Kafka broker": ("kafka", 1.0),
    "the tracker workers": ("tracker-workers", 1.0),
    "PostgreSQL": ("postgres", 0.7),
}


def print_budget(rows: dict[str, float], n: int) -> None:
    """Each budget line of issue 14 against what this run measured, in ms of CPU per image."""
    parts = []
    for label, (row, budget) in BUDGET.items():
        spent = 1000 * rows.get(row, 0.0) / n
        parts.append(f"{label} {spent:.1f} ({'within' if spent <= budget else 'over'} {budget:g})")
    print("outside Pillow, ms per image against the budget: " + ", ".join(parts))


def members() -> int:
    from devstack import services

    return MEMBERS or services.COMPRESSOR_MEMBERS


def member_memory() -> str:
    from devstack.services import MEMBER_ALLOCATOR, PILLOW_MEMORY

    return ", ".join(f"{k}={v}" for k, v in {**PILLOW_MEMORY, **MEMBER_ALLOCATOR}.items())


def cpu_rows(run: PipelineRun) -> dict[str, float]:
    """CPU seconds of a request by component, the members split into Pillow and their own work."""
    rows = {name: seconds for name, seconds in run.cpu.items() if name != "compressors"}
    rows[OWN_WORK] = run.members_cpu
    if run.pillow_threads_cpu > 0.05:
        rows["compressor: members' Pillow threads (decode, convert, encode)"] = run.pillow_threads_cpu
    if run.pillow_cpu > 0.05:
        rows["compressor: Pillow worker processes"] = run.pillow_cpu
    return rows


def stack_cpu(run: PipelineRun) -> float:
    """CPU seconds of every pipeline process (not the bench's image server and client)."""
    return sum(seconds for name, seconds in cpu_rows(run).items() if name != BENCH_ITSELF)


def _listed(values: list[float], unit: str = "") -> str:
    return ", ".join(f"{value:.2f}{unit}" for value in values)


def report(specs: list[Spec], measured: Measured, env: dict) -> None:
    per_set = len(specs)
    run = combined(measured.runs)
    n = per_set * len(measured.runs)
    baselines = measured.baselines()
    # Raw Pillow over the same images as the requests: each request's own baseline, added up.
    raw_seconds = sum(b.seconds for b in baselines)
    raw_cpu = sum(b.cpu for b in baselines)
    raw_machine = sum(b.machine for b in baselines)
    raw_rate = n / raw_seconds
    blocks = os.environ.get("PILLOW_BLOCKS_MAX", "Pillow's default")
    print(
        f"raw Pillow:  {raw_rate:6.1f} images/s  (decode + encode q50, {CORES} processes, from memory, the stack "
        f"stopped; memory blocks kept: {blocks}; the members: {member_memory()}); before, between and after "
        f"the requests: {_listed([per_set / r.seconds for r in measured.raws])} images/s, "
        f"{_listed([1000 * r.cpu / per_set for r in measured.raws])} ms per image"
    )
    rates = [per_set / r.seconds for r in measured.runs]
    print(
        f"pipeline:    {n / run.seconds:6.1f} images/s  ({len(measured.runs)} requests of {per_set} images in a row, "
        f"{_listed(rates)} images/s upload -> completed, after a {WARM_UP_IMAGES}-image warm-up, not measured; "
        f"status {run.status['status']}, {run.status['processed_images']} done, "
        f"{run.status['failed_images']} failed; {members()} compressor members, settings {env or 'defaults'})"
    )
    ratio = raw_seconds / run.seconds
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(
        f"ratio:       {ratio:6.2f}  ({verdict} the {TARGET_RATIO} target; request by request, each against "
        f"the raw runs around it: {_listed([b.seconds / r.seconds for r, b in zip(measured.runs, baselines, strict=True)])})"
    )

    rows = cpu_rows(run)
    stack = stack_cpu(run)
    available = CORES * run.seconds
    other = max(0.0, run.machine_cpu - stack - rows.get(BENCH_ITSELF, 0.0))
    rows["other processes on the machine (not this benchmark)"] = other
    rows["idle"] = max(0.0, available - run.machine_cpu)
    print(
        f"\nwhere the {available:.1f} core-seconds of the {len(measured.runs)} requests went "
        f"({CORES} cores x {run.seconds:.1f}s):"
    )
    for name, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(
            f"  {name:<70} {seconds:6.1f} core-s {seconds / available:6.1%} {1000 * seconds / n:6.1f} ms/image"
        )
    raw_other = max(0.0, raw_machine - raw_cpu)
    print(
        f"\nother processes took {other / available:.0%} of the machine during the requests and "
        f"{raw_other / raw_machine if raw_machine else 0:.0%} during the raw runs, which skews the ratio of rates."
    )
    print(
        f"CPU per image: raw Pillow {1000 * raw_cpu / n:.1f} ms; the pipeline's processes {1000 * stack / n:.1f} ms "
        f"(every service, Kafka and PostgreSQL; not the image server). CPU-bound ratio {raw_cpu / stack:.2f}: what "
        f"the ratio of rates comes to when the pipeline has the cores to itself and keeps them busy."
    )
    cpu_ratio = stack / raw_cpu
    verdict = "meets" if cpu_ratio <= TARGET_CPU else "above"
    by_request = [stack_cpu(r) / b.cpu for r, b in zip(measured.runs, baselines, strict=True)]
    print(
        f"CPU per image, pipeline to raw Pillow: {cpu_ratio:.2f}x ({verdict} the {TARGET_CPU}x target; request by "
        f"request, each against the raw runs around it: {_listed(by_request, 'x')})"
    )
    print_budget(rows, n)
    latency_probe.report(*measured.latency)


def main() -> None:
    specs = plan(COUNT)
    ensure_images(specs)
    print(describe(specs), flush=True)
    env = json.loads(os.environ.get("BENCH_COMPRESSOR_ENV", "{}"))
    report(specs, run_pipeline(specs, env), env)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))
    main()
