"""A real CPU quota: a compressor started in a cgroup limited to one CPU sizes its Pillow pool to 1.

What a container's CPU limit does (Docker `--cpus`, Kubernetes `limits.cpu`), made here with a
cgroup of our own under the machine's cgroup file system and removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path("/sys/fs/cgroup")
PROBE = (
    "from compressor.config import Settings; import os; "
    "print(os.cpu_count(), Settings(_env_file=None).pool_size)"
)


def quota_cgroup() -> tuple[Path, dict[str, str]] | None:
    """A new cgroup directory and the files that give it one CPU, if this machine lets us."""
    name = f"imgpipe-test-{uuid.uuid4().hex[:8]}"
    controllers = ROOT / "cgroup.subtree_control"
    if controllers.exists() and "cpu" in controllers.read_text().split():  # cgroup v2
        return ROOT / name, {"cpu.max": "100000 100000"}
    for v1 in ("cpu", "cpu,cpuacct"):
        if (ROOT / v1 / "cpu.cfs_quota_us").exists():
            return ROOT / v1 / name, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"}
    return None


@pytest.fixture
def one_cpu_cgroup():
    found = quota_cgroup()
    if os.geteuid() != 0 or found is None:
        pytest.skip("needs root and a cgroup file system with the cpu controller to make a quota")
    path, files = found
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    try:
        for file, value in files.items():
            (path / file).write_text(value)
        yield path
    finally:
        path.rmdir()  # its process has exited: the cgroup is empty


def test_a_member_in_a_one_cpu_cgroup_runs_one_pillow_thread(one_cpu_cgroup, monkeypatch):
    monkeypatch.delenv("COMPRESSOR_POOL_SIZE", raising=False)
    # the shell joins the cgroup, then becomes the interpreter: the member starts inside it
    script = f'echo $$ > {one_cpu_cgroup / "cgroup.procs"} && exec "$0" -c "$1"'
    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        ["/bin/sh", "-c", script, sys.executable, PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    host_cores, pool_size = (int(v) for v in result.stdout.split())
    assert pool_size == 1
    assert host_cores == os.cpu_count()  # what the old default would have started
