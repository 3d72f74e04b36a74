"""What devstack starts for the compressor: members from the cores, Pillow keeping its blocks."""

from __future__ import annotations

from devstack import services
from devstack.profiles import CLUSTER, PROFILES, Profile
from pipeline_runtime.cpus import available_cpus


def test_every_compressor_member_keeps_pillows_memory_blocks(monkeypatch, tmp_path):
    # a bridged host's scratch directory goes to tmp_path, not the checkout's .run/cluster
    monkeypatch.setattr(Profile, "run_dir", property(lambda self: tmp_path / self.name))
    for profile in (*PROFILES.values(), CLUSTER):
        for name in services.commands(profile):
            if name.startswith("compressor"):
                env = services.own_env(profile, name)
                assert (env["PILLOW_BLOCKS_MAX"], env["PILLOW_BLOCK_SIZE"]) == ("128", "1m")
                assert env["MALLOC_MMAP_THRESHOLD_"] == str(4 * 1024 * 1024)


def test_one_member_per_two_cores_at_least_one_at_most_four():
    assert [services.members_for(cores) for cores in (1, 2, 3, 4, 6, 8, 16, 64)] == [1, 1, 1, 2, 3, 4, 4, 4]


def test_the_test_stack_always_runs_two_members():
    members = [n for n in services.commands(PROFILES["test"]) if n.startswith("compressor")]
    assert members == ["compressor-1", "compressor-2"]


def test_the_members_on_one_machine_follow_the_cores():
    local = PROFILES["dev"]
    members = [n for n in services.commands(local) if n.startswith("compressor")]
    # a container's CPU quota counts, not the host's cores
    assert len(members) == services.members_for(available_cpus()) == services.COMPRESSOR_MEMBERS
    ports = {services.own_env(local, n)["COMPRESSOR_METRICS_PORT"] for n in members}
    assert len(ports) == len(members)
