"""Upload a 100,000-row CSV (300,000 URLs) to a real ingest process: time to the 202, peak memory.

Targets (issue 3): under 10 s to the 202 and under 500 MB peak resident memory on 2 cores.

Only what ingest needs is started: PostgreSQL of the `test` profile (through devstack), a
database of the benchmark's own (dropped afterwards) and one ingest process. Its Kafka address
is a closed local port, so none of the 300,000 image.requested events can reach a broker and
no compressor of any running stack is handed URLs that nobody serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from pipeline_runtime.auth import new_api_key

BENCH_KEY = new_api_key()  # the bench's ingest makes it exist (BOOTSTRAP_API_KEY)

ROWS = 100_000
URLS_PER_ROW = 3
TARGET_SECONDS = 10.0
TARGET_MB = 500.0
BENCH_DATABASE = "imgpipe_bench"


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


def measure(url: str, pid: int, data: bytes) -> tuple[float, float, float, dict]:
    before_mb = memory_kb(pid, "VmRSS") / 1024
    started = time.perf_counter()
    response = httpx.post(
        url + "/upload",
        files={"file": ("products.csv", data, "text/csv")},
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    peak_mb = memory_kb(pid, "VmHWM") / 1024
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    return elapsed, before_mb, peak_mb, response.json()


def server_phases(log_path: Path, request_id: str) -> str:
    """validate/store seconds from ingest's own `upload.accepted` log line, if it is there."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if request_id in line and "upload.accepted" in line:
            entry = json.loads(line)
            return f"validate {entry['validate_seconds']:.2f} s, store {entry['store_seconds']:.2f} s"
    return "not logged"


def report(data: bytes, elapsed: float, before_mb: float, peak_mb: float, body: dict, stored: tuple) -> None:
    requests, images, outbox = stored
    print(f"CSV: {ROWS:,} rows, {ROWS * URLS_PER_ROW:,} URLs, {len(data) / 1e6:.1f} MB")
    print(f"accepted: total_products={body['total_products']:,} total_images={body['total_images']:,}")
    print(f"stored in PostgreSQL: {requests} request, {images:,} images, {outbox:,} outbox events")
    verdict = "ok" if elapsed < TARGET_SECONDS else "OVER TARGET"
    print(f"time to 202: {elapsed:.2f} s (target < {TARGET_SECONDS:.0f} s: {verdict})")
    verdict = "ok" if peak_mb < TARGET_MB else "OVER TARGET"
    print(
        f"ingest peak memory (VmHWM): {peak_mb:.0f} MB (idle before: {before_mb:.0f} MB;"
        f" target < {TARGET_MB:.0f} MB: {verdict})"
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
        elapsed, before_mb, peak_mb, body = measure(url, proc.pid, data)
        report(data, elapsed, before_mb, peak_mb, body, asyncio.run(count_stored(dsn)))
        print(f"inside ingest: {server_phases(log_path(profile.run_dir), body['request_id'])}")
        print(f"load average while measuring (other work on this machine): {os.getloadavg()[0]:.1f}")
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
