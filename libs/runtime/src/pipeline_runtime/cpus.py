"""How many CPUs this process may use: the cores it may run on, capped by its cgroup's CPU quota.

`os.cpu_count()` counts the host's cores. In a container limited to 2 CPUs on a 32-core host it
says 32, and a pool sized from it runs 32 threads that the quota throttles to 2 CPUs' worth of
time (more memory, more switching, no more work done). The quota is what Docker's `--cpus` and
Kubernetes' `limits.cpu` set: `cpu.max` in cgroup v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us`
in cgroup v1, read for the process's own cgroup and every parent (the tightest applies: a
systemd slice's `CPUQuota=` as well as a container's limit). A fractional quota rounds up, as
Kubernetes' downward API does for `limits.cpu`.
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


def own_cgroups(proc_self_cgroup: str) -> tuple[str, str]:
    """(cgroup v2 path, cgroup v1 cpu path) of a process, from /proc/<pid>/cgroup; "/" if absent.

    Lines are `id:controllers:path`; v2's has no controllers, v1's cpu line lists `cpu`.
    """
    v2 = v1 = "/"
    for line in proc_self_cgroup.splitlines()[:64]:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _up_to_root(base: Path, path: str) -> list[Path]:
    """`base/path` and each of its parents down to `base`: a quota anywhere above applies too.

    In a container the cgroup file system is usually the container's own, and the path from
    /proc/self/cgroup (the host's view) does not exist there: then only `base` is read.
    """
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _smallest(pairs: list[tuple[int, int]]) -> tuple[int | None, int | None]:
    limits = [(q, p) for q, p in pairs if q > 0 and p > 0]
    return min(limits, key=lambda qp: qp[0] / qp[1]) if limits else (None, None)


def cgroup_quota(
    root: Path = CGROUP_ROOT, own: tuple[str, str] = ("/", "/")
) -> tuple[int | None, int | None]:
    """(quota, period) in microseconds of the tightest CPU quota over the process's cgroup and
    its parents: cgroup v2 `cpu.max`, else v1 `cpu.cfs_quota_us`; (None, None) when unlimited."""
    v2_path, v1_path = own
    v2 = [
        parse_cpu_max(text) for d in _up_to_root(root, v2_path) if (text := _read(d / "cpu.max")) is not None
    ]
    if v2:
        return _smallest([(q, p) for q, p in v2 if q is not None and p is not None])
    v1 = []
    for name in V1_CPU_DIRS:
        for d in _up_to_root(root / name, v1_path):
            quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                try:
                    v1.append((int(quota), int(period)))  # an unlimited v1 quota is -1
                except ValueError:
                    continue
    return _smallest(v1)


def affinity_cores() -> int:
    """The cores this process may be scheduled on (a cpuset narrows them), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def available_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process can keep busy: its cores, capped by its cgroups' CPU quotas."""
    return cpus_from(affinity_cores(), *cgroup_quota(root, own_cgroups(_read_all(proc_cgroup))))


def _read_all(path: Path, limit: int = 16_384) -> str:
    try:
        with path.open() as file:
            return file.read(limit)
    except OSError:
        return ""
