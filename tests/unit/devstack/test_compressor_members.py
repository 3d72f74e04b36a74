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


def test_the_members_on_one_machine_follow_the_cores():
    local = next(p for p in PROFILES.values() if not p.bridged)
    members = [n for n in services.commands(local) if n.startswith("compressor")]
    assert len(members) == min(available_cpus(), 4)  # a container's CPU quota counts, not the host
    ports = {services.own_env(local, n)["COMPRESSOR_METRICS_PORT"] for n in members}
    assert len(ports) == len(members)
