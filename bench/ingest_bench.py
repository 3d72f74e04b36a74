"""Upload a 100,000-row CSV (300,000 URLs) to a real ingest process: time to the 202, peak memory.

Targets (issue 14): at most 4 s to the 202 and 250 MB peak resident memory on 2 cores.

The machine is shared, so each round also measures a baseline just before and just after the
upload: this process csv-parses the same file and COPYs the same 300,000 image rows (text)
straight into a table without indexes or checks. The ratio upload / baseline is what to compare
between runs, and the CPU seconds of ingest and of its PostgreSQL backends, which the load of the
machine hardly changes.

Only what ingest needs is started: PostgreSQL of the `test` profile (through devstack), a
database of the benchmark's own (dropped afterwards) and one ingest process. Its Kafka address
is a closed local port, so none of the 300,000 image.requested events can reach a broker and
no compressor of any running stack is handed URLs that nobody serves.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import asyncpg
import httpx
from pipeline_runtime.auth import new_api_key

BENCH_KEY = new_api_key()  # the bench's ingest makes it exist (BOOTSTRAP_API_KEY)

ROWS = 100_000
URLS_PER_ROW = 3
TARGET_SECONDS = 4.0
TARGET_MB = 250.0
BENCH_DATABASE = "imgpipe_bench"
ROUNDS = int(os.environ.get("INGEST_BENCH_ROUNDS", "3"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def product_csv(rows: int = ROWS) -> bytes:
    """Quoted URL cells, one host nobody serves (port 9, discard), realistic path lengths."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    for serial in range(1, rows + 1):
        urls = ",".join(
            f"http://127.0.0.1:9/catalogue/{serial:06d}/photo-{k}.jpg" for k in range(URLS_PER_ROW)
        )
        lines.append(f'{serial},Product number {serial},"{urls}"')
    return ("\r\n".join(lines) + "\r\n").encode()


def memory_kb(pid: int, field: str) -> int:
    """VmHWM (peak resident set) or VmRSS from /proc, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


def bench_dsn(base_dsn: str) -> str:
    return base_dsn.rpartition("/")[0] + "/" + BENCH_DATABASE


async def prepare_database(dsn: str) -> None:
    from devstack import postgres
    from devstack.migrate import apply_migrations

    await postgres.drop_database(dsn)
    await postgres.create_database(dsn)
    await apply_migrations(dsn)


async def count_stored(dsn: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        requests = await conn.fetchval("SELECT count(*) FROM requests")
        images = await conn.fetchval("SELECT count(*) FROM images")
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return requests, images, outbox


def log_path(run_dir: Path) -> Path:
    return run_dir / "logs" / "ingest-bench.log"


def start_ingest(run_dir: Path, dsn: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # closed: nothing is published
        "INGEST_PORT": str(port),
        "BOOTSTRAP_API_KEY": BENCH_KEY,
        "INGEST_UPLOAD_RATE_PER_MINUTE": "0",  # no rate limit
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    path = log_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("ingest exited during start-up; see ingest-bench.log")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"ingest not healthy after {timeout:.0f}s")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


async def backend_pids(dsn: str) -> list[int]:
    """The PostgreSQL server processes connected to the bench database (ingest's pool), if local."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]  # not local (an external server): cpu_seconds reads 0


def reset_peak(pid: int) -> None:
    """Start VmHWM afresh (Linux: 5 > clear_refs), so each round's peak is its own."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(url: str, pid: int, data: bytes, dsn: str) -> tuple[float, float, float, float, float, dict]:
    """Seconds to the 202, ingest's peak RSS, and the CPU seconds of ingest, of its PostgreSQL
    backends and of this client (building and sending the multipart body)."""
    reset_peak(pid)
    backends = {p: cpu_seconds(p) for p in asyncio.run(backend_pids(dsn))}
    ingest_cpu = cpu_seconds(pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    response = httpx.post(
        url + "/upload",
        files={"file": ("products.csv", data, "text/csv")},
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    peak_mb = memory_kb(pid, "VmHWM") / 1024
    ingest_cpu = cpu_seconds(pid) - ingest_cpu
    pids = set(backends) | set(asyncio.run(backend_pids(dsn)))
    postgres_cpu = sum(cpu_seconds(p) - backends.get(p, 0.0) for p in pids)
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    return elapsed, peak_mb, ingest_cpu, postgres_cpu, client_cpu, response.json()


async def baseline(dsn: str, data: bytes) -> tuple[float, float]:
    """Seconds to csv-parse the file here, and to COPY its 300,000 image rows into a bare table."""
    started = time.perf_counter()
    records = list(csv.reader(io.StringIO(data.decode(), newline="")))
    parsed = time.perf_counter()
    lines = [
        f"{n}\t{k}\t{url}\n"
        for n, (_, _, cell) in enumerate(records[1:])
        for k, url in enumerate(cell.split(","))
    ]
    text = "".join(lines).encode()
    del records, lines
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (row_number int, position int, input_url text)"
        )
        copy_started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_to_table("bench_baseline", source=io.BytesIO(text), format="text")
        copied = time.perf_counter()
        await conn.execute("TRUNCATE bench_baseline")
    finally:
        await conn.close()
    return parsed - started, copied - copy_started


async def clear_uploads(dsn: str) -> None:
    """Each round starts from empty tables (DELETE: the requests' rows go with them)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM requests")
        await conn.execute("VACUUM requests, products, images")
    finally:
        await conn.close()


def server_phases(log_path: Path, request_id: str) -> str:
    """validate/store seconds from ingest's own `upload.accepted` log line, if it is there."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if request_id in line and "upload.accepted" in line:
            entry = json.loads(line)
            return f"validate {entry['validate_seconds']:.2f} s, store {entry['store_seconds']:.2f} s"
    return "not logged"


class Round(NamedTuple):  # not a dataclass: run.py loads this file without registering the module
    upload_s: float
    peak_mb: float
    ingest_cpu_s: float
    postgres_cpu_s: float
    client_cpu_s: float
    csv_s: float
    copy_s: float
    phases: str

    @property
    def baseline_s(self) -> float:
        return self.csv_s + self.copy_s

    @property
    def ratio(self) -> float:
        return self.upload_s / self.baseline_s


def run_round(url: str, proc: subprocess.Popen[bytes], dsn: str, data: bytes, run_dir: Path) -> Round:
    asyncio.run(clear_uploads(dsn))
    csv_before, copy_before = asyncio.run(baseline(dsn, data))
    elapsed, peak_mb, ingest_cpu, postgres_cpu, client_cpu, body = measure(url, proc.pid, data, dsn)
    stored = asyncio.run(count_stored(dsn))
    csv_after, copy_after = asyncio.run(baseline(dsn, data))
    # The mean of the baselines just before and just after: the load the upload met lies between.
    csv_s, copy_s = (csv_before + csv_after) / 2, (copy_before + copy_after) / 2
    # The outbox may already hold the scheduler's first window of events: admitted after the 202.
    if stored[:2] != (1, ROWS * URLS_PER_ROW) or body["total_images"] != ROWS * URLS_PER_ROW:
        raise RuntimeError(f"stored {stored} (requests, images, outbox) for {body}")
    return Round(
        elapsed,
        peak_mb,
        ingest_cpu,
        postgres_cpu,
        client_cpu,
        csv_s,
        copy_s,
        server_phases(log_path(run_dir), body["request_id"]),
    )


def report(data: bytes, idle_mb: float, rounds: list[Round]) -> None:
    print(f"CSV: {ROWS:,} rows, {ROWS * URLS_PER_ROW:,} URLs, {len(data) / 1e6:.1f} MB; {len(rounds)} rounds")
    print(
        "baseline: this process csv-parses the file, then COPYs its 300,000 image rows into a bare table"
        " (mean of one run just before and one just after the upload)"
    )
    for n, r in enumerate(rounds, 1):
        print(
            f"  round {n}: upload -> 202 {r.upload_s:5.2f} s ({r.phases}), peak RSS {r.peak_mb:4.0f} MB,"
            f" CPU ingest {r.ingest_cpu_s:.2f} s + PostgreSQL {r.postgres_cpu_s:.2f} s"
            f" (client {r.client_cpu_s:.2f} s);"
            f" baseline {r.baseline_s:.2f} s (csv {r.csv_s:.2f} + COPY {r.copy_s:.2f}); ratio {r.ratio:.2f}"
        )
    times = [r.upload_s for r in rounds]
    ratios = [r.ratio for r in rounds]
    peak = max(r.peak_mb for r in rounds)
    cpu = [r.ingest_cpu_s + r.postgres_cpu_s for r in rounds]
    verdict = "ok" if statistics.median(times) <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"time to 202: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f});"
        f" target <= {TARGET_SECONDS:.0f} s: {verdict}"
    )
    print(
        f"upload / baseline: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
    )
    print(
        f"CPU per upload, ingest + its PostgreSQL backends (done one after the other: about the time"
        f" to 202 on an idle machine):"
        f" median {statistics.median(cpu):.2f} s (min {min(cpu):.2f}, max {max(cpu):.2f})"
    )
    verdict = "ok" if peak <= TARGET_MB else "OVER TARGET"
    print(
        f"ingest peak memory (VmHWM): {peak:.0f} MB (idle before: {idle_mb:.0f} MB; target <= {TARGET_MB:.0f} MB: {verdict})"
    )


def main() -> None:
    from devstack import postgres
    from devstack.profiles import PROFILES

    profile = PROFILES["test"]
    started_postgres = profile.external_database is None and not postgres.is_running(profile)
    postgres.start(profile)
    dsn = bench_dsn(profile.database_url)
    asyncio.run(prepare_database(dsn))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_ingest(profile.run_dir, dsn, port)
    try:
        wait_healthy(url, proc)
        data = product_csv()
        idle_mb = memory_kb(proc.pid, "VmRSS") / 1024
        load_before = os.getloadavg()[0]
        rounds = [run_round(url, proc, dsn, data, profile.run_dir) for _ in range(ROUNDS)]
        report(data, idle_mb, rounds)
        print(
            f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        asyncio.run(postgres.drop_database(dsn))  # the 300,000 events go with it
        if started_postgres:
            postgres.stop(profile)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
