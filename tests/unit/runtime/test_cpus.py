"""The CPUs a process may use: cores capped by the cgroup CPU quota (what a container's limit sets)."""

from __future__ import annotations

import os

import pytest
from compressor.config import Settings
from pipeline_runtime import cpus


@pytest.mark.parametrize(
    ("cores", "quota", "period", "expected"),
    [
        (32, None, None, 32),  # no quota: the cores
        (32, 200_000, 100_000, 2),  # docker --cpus 2 / limits.cpu: "2" on a 32-core host
        (32, 150_000, 100_000, 2),  # 1.5 CPUs round up, as the downward API's limits.cpu does
        (32, 50_000, 100_000, 1),  # half a CPU is still one worker
        (2, 800_000, 100_000, 2),  # a quota above the cores: the cores
        (0, None, None, 1),
        (4, -1, 100_000, 4),  # cgroup v1 writes -1 for no quota
    ],
)
def test_the_cpus_are_the_cores_capped_by_the_quota(cores, quota, period, expected):
    assert cpus.cpus_from(cores, quota, period) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max 100000\n", (None, 100_000)),
        ("200000 100000\n", (200_000, 100_000)),
        ("", (None, None)),
        ("garbage", (None, None)),
    ],
)
def test_cgroup_v2_cpu_max_is_parsed(text, expected):
    assert cpus.parse_cpu_max(text) == expected


def test_the_quota_is_read_from_cgroup_v2_first(tmp_path):
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_quota(tmp_path) == (300_000, 100_000)


@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct"])
def test_the_quota_is_read_from_cgroup_v1_when_there_is_no_v2_file(tmp_path, directory):
    (tmp_path / directory).mkdir()
    (tmp_path / directory / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / directory / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_quota(tmp_path) == (100_000, 100_000)
    assert cpus.available_cpus(tmp_path, tmp_path / "no-proc-file") == 1


def test_a_process_finds_its_own_cgroups_in_proc_self_cgroup():
    v2_only = "0::/system.slice/imgpipe-compressor.service\n"
    assert cpus.own_cgroups(v2_only) == ("/system.slice/imgpipe-compressor.service", "/")
    hybrid = "12:pids:/x\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n"
    assert cpus.own_cgroups(hybrid) == ("/", "/docker/abc")
    assert cpus.own_cgroups("") == ("/", "/")


def cpu_max(directory, text):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cpu.max").write_text(text)


def test_the_tightest_quota_of_the_cgroup_and_its_parents_applies(tmp_path):
    cpu_max(tmp_path, "max 100000\n")
    cpu_max(tmp_path / "system.slice", "150000 100000\n")  # a slice's CPUQuota=150%
    cpu_max(tmp_path / "system.slice" / "member.service", "400000 100000\n")
    own = ("/system.slice/member.service", "/")
    assert cpus.cgroup_quota(tmp_path, own) == (150_000, 100_000)
    proc_cgroup = tmp_path / "proc-self-cgroup"
    proc_cgroup.write_text("0::/system.slice/member.service\n")
    assert cpus.available_cpus(tmp_path, proc_cgroup) == min(2, len(os.sched_getaffinity(0)))


def test_in_a_container_the_hosts_path_is_absent_and_the_mounted_cgroup_counts(tmp_path):
    cpu_max(tmp_path, "100000 100000\n")  # the container's own cgroup, mounted at the root
    assert cpus.cgroup_quota(tmp_path, ("/kubepods/burstable/pod1/abc", "/")) == (100_000, 100_000)
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_quota(tmp_path / "v1", ("/", "/docker/abc")) == (200_000, 100_000)


def test_without_cgroup_files_the_cpus_are_the_schedulable_cores(tmp_path):
    assert cpus.cgroup_quota(tmp_path) == (None, None)
    assert cpus.available_cpus(tmp_path, tmp_path / "no-proc-file") == len(os.sched_getaffinity(0))


def test_the_compressors_pillow_pool_defaults_to_the_available_cpus(monkeypatch):
    monkeypatch.delenv("COMPRESSOR_POOL_SIZE", raising=False)
    assert Settings(_env_file=None).pool_size == cpus.available_cpus()
    monkeypatch.setenv("COMPRESSOR_POOL_SIZE", "3")  # what the k8s downward API sets
    assert Settings(_env_file=None).pool_size == 3
