"""The cluster profile's pure parts: replication choices, broker configs, what a host may see."""

from __future__ import annotations

import os
import re
import socket

import pytest
from devstack import kafka, ports, services
from devstack.profiles import BRIDGE_ADDRESS, CLUSTER, PROFILES, Profile


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.mark.parametrize(
    ("configured", "brokers", "expected"),
    [
        ((None, None), 1, (1, 1)),  # a single broker: nothing to replicate to
        ((None, None), 3, (3, 2)),  # three: one may be down while writes continue
        ((None, None), 5, (3, 2)),  # more brokers do not mean more copies
        ((None, None), 2, (2, 1)),
        ((3, 2), 3, (3, 2)),
        ((2, None), 6, (2, 1)),
    ],
)
def test_replication_follows_settings_else_the_cluster_size(configured, brokers, expected):
    assert kafka.resolve_replication(configured, brokers) == expected


def test_a_replication_factor_the_cluster_cannot_honour_is_refused_not_lowered():
    with pytest.raises(RuntimeError, match="needs 3 brokers; the cluster has 1"):
        kafka.resolve_replication((3, 2), 1)
    with pytest.raises(RuntimeError, match="min.insync.replicas 4"):
        kafka.resolve_replication((3, 4), 3)


def test_cluster_nodes_share_a_quorum_and_differ_in_id_ports_and_directory():
    nodes = [props(kafka.server_properties(CLUSTER, n)) for n in (1, 2, 3)]
    assert [n["node.id"] for n in nodes] == ["1", "2", "3"]
    assert len({n["controller.quorum.voters"] for n in nodes}) == 1
    assert nodes[0]["controller.quorum.voters"].count("@") == 3
    assert len({n["listeners"] for n in nodes}) == 3
    assert len({n["log.dirs"] for n in nodes}) == 3
    for node in nodes:
        assert node["default.replication.factor"] == "3"
        assert node["min.insync.replicas"] == "2"
        assert node["offsets.topic.replication.factor"] == "3"
        assert node["transaction.state.log.replication.factor"] == "3"
        assert node["transaction.state.log.min.isr"] == "2"
        assert node["unclean.leader.election.enable"] == "false"
        assert f"BRIDGE://{BRIDGE_ADDRESS}:" in node["advertised.listeners"]


def test_single_node_profiles_replicate_once():
    node = props(kafka.server_properties(PROFILES["dev"]))
    assert node["default.replication.factor"] == node["offsets.topic.replication.factor"] == "1"
    assert node["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert "BRIDGE" not in node["listener.security.protocol.map"]


def test_a_compressor_host_is_given_only_bridge_addresses(monkeypatch, tmp_path):
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(name, raising=False)
    # its secrets and the host's scratch directory go to tmp_path, not the checkout's .run/cluster
    monkeypatch.setattr(Profile, "run_dir", property(lambda self: tmp_path / self.name))
    profile = CLUSTER
    env = {**profile.service_env(), **services.own_env(profile, "compressor-2")}
    reachable = " ".join(
        env[k]
        for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "COMPRESSOR_S3_ENDPOINT_URL", "FETCH_ALLOWLIST")
    )
    assert "127.0.0.1" not in reachable
    assert set(re.findall(r"\d+\.\d+\.\d+\.\d+", reachable)) == {BRIDGE_ADDRESS}
    assert env["COMPRESSOR_STORAGE_URL"].startswith("s3://")
    assert env["KAFKA_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert services.commands(profile)["compressor-2"][:4] == ["ip", "netns", "exec", "imgp-h2"]


def test_a_taken_port_is_reported_with_the_process_that_holds_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not ports.is_free(port)
        assert ports.holder(port).startswith(f"pid {os.getpid()} (")
    assert ports.is_free(port)
