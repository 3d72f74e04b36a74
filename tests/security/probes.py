"""What the hostile-use suite reads from the running stack: process memory and service health.

Memory is the resident set (VmRSS of /proc/<pid>/status) of each process devstack started; its
pid files are in .run/<profile>/pids/. Bounds are per service, from what the stack
measured by this suite (below), with headroom; docs/operations.md, "Limits", lists them too.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

MIB = 1024 * 1024
# Resident memory each process of the test stack must stay under, at its peak during the hostile
# cases (sampled every 0.2 s) and after them.
# Measured (slot 5, peaks during the suite on a fresh stack): ingest 80 MiB, compressors 81-97 MiB
# (110 MiB after the e2e compressor corpus ran first), tracker workers 92 MiB, tracker API 70 MiB,
# notifier 92 MiB (also while the endless subscriber wrote to it). Each bound leaves at least twice
# that, for a stack that `make test` used before this suite (e2e and chaos run first).
RSS_BOUNDS_MIB: dict[str, int] = {
    "ingest": 250,
    "compressor": 300,
    "tracker-worker": 300,
    "tracker-api": 200,
    "notifier": 200,
}


def service_of(process: str) -> str:
    """`compressor-2` → `compressor`; names without a member number are their own service."""
    head, _, tail = process.rpartition("-")
    return head if tail.isdigit() else process


def pids(run_dir: Path) -> dict[str, int]:
    """Every process of the stack with a pid file: name → pid (the pid file's first field)."""
    found = {}
    for path in sorted((run_dir / "pids").glob("*.pid")):
        first = path.read_text().split()
        if first and first[0].isdigit():
            found[path.stem] = int(first[0])
    return found


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a live process, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # kB
    return None


def service_rss(run_dir: Path) -> dict[str, int | None]:
    """RSS of every pipeline process (not Kafka, PostgreSQL or the object store)."""
    return {name: rss_bytes(pid) for name, pid in pids(run_dir).items() if service_of(name) in RSS_BOUNDS_MIB}


async def ready(urls: dict[str, str]) -> dict[str, int | str]:
    """Status of each service's /readyz (or the error's name when it does not answer)."""
    found: dict[str, int | str] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in urls.items():
            try:
                found[name] = (await http.get(url)).status_code
            except httpx.HTTPError as exc:
                found[name] = type(exc).__name__
    return found


class PeakMemory:
    """Samples every process's RSS in the background while the cases run; keeps each one's peak."""

    def __init__(self, run_dir: Path, interval: float = 0.2) -> None:
        self._run_dir, self._interval = run_dir, interval
        self.peak: dict[str, int] = {}
        self._task: asyncio.Task | None = None

    def sample(self) -> None:
        for name, used in service_rss(self._run_dir).items():
            if used is not None:
                self.peak[name] = max(self.peak.get(name, 0), used)

    async def _run(self) -> None:
        while True:  # bounded by the suite: cancelled when the cases end
            self.sample()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> PeakMemory:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()
