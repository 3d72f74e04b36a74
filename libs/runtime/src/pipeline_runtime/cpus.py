"""How many CPUs this process may use: the cores it may run on, capped by its cgroup's CPU quota.

`os.cpu_count()` counts the host's cores. In a container limited to 2 CPUs on a 32-core host it
says 32, and a pool sized from it runs 32 threads that the quota throttles to 2 CPUs' worth of
time (more memory, more switching, no more work done). The quota is what Docker's `--cpus` and
Kubernetes' `limits.cpu` set: `cpu.max` in cgroup v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us`
in cgroup v1. A fractional quota rounds up, as Kubernetes' downward API does for `limits.cpu`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 mounts the cpu controller under either name
V1_CPU_DIRS = ("cpu", "cpu,cpuacct")
MAX_READ = 64  # bytes of one cgroup file: "max 100000" or two integers


def cpus_from(cores: int, quota_us: int | None, period_us: int | None) -> int:
    """`cores`, capped by ceil(quota / period) when there is a quota; at least 1."""
    usable = max(1, cores)
    if quota_us is None or period_us is None or quota_us <= 0 or period_us <= 0:
        return usable
    return max(1, min(usable, math.ceil(quota_us / period_us)))


def parse_cpu_max(text: str) -> tuple[int | None, int | None]:
    """cgroup v2 `cpu.max` ("max 100000" or "200000 100000") as (quota, period); None: no limit."""
    fields = text.split()
    if len(fields) != 2 or not fields[1].isdigit():
        return None, None
    quota = int(fields[0]) if fields[0].isdigit() else None
    return quota, int(fields[1])


def _read(path: Path) -> str | None:
    try:
        with path.open() as file:
            return file.read(MAX_READ)
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT) -> tuple[int | None, int | None]:
    """(quota, period) in microseconds from cgroup v2, else v1; (None, None) when unlimited."""
    text = _read(root / "cpu.max")
    if text is not None:
        return parse_cpu_max(text)
    for name in V1_CPU_DIRS:
        quota, period = _read(root / name / "cpu.cfs_quota_us"), _read(root / name / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            try:
                return int(quota), int(period)  # an unlimited v1 quota is -1
            except ValueError:
                return None, None
    return None, None


def affinity_cores() -> int:
    """The cores this process may be scheduled on (a cpuset narrows them), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process can keep busy: its cores, capped by its cgroup's CPU quota."""
    return cpus_from(affinity_cores(), *cgroup_quota(root))
