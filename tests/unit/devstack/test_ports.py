"""A taken port is reported in one line naming the process that holds it, before anything starts.

Each profile's layout is moved to a block of free ports (and a run directory under tmp_path), so
the checks run against real listening sockets without touching a stack that is running here.
"""

from __future__ import annotations

import dataclasses
import os
import random
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from devstack import demo, kafka, ports, postgres, procs, s3store, services
from devstack.__main__ import check_ports, stack_parts
from devstack.profiles import CLUSTER, PROFILES, Profile

LAYOUTS = {"dev": PROFILES["dev"], "test": PROFILES["test"], "cluster": CLUSTER}


@pytest.fixture(autouse=True)
def own_servers(monkeypatch, tmp_path):
    """Servers of the profile's own (not the environment's), state in tmp_path."""
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Profile, "run_dir", property(lambda self: tmp_path / self.name))


def relocated(profile: Profile) -> Profile:
    """The same layout with every port in a block where nothing listens now."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 30_000, 100)
        moved = dataclasses.replace(
            profile,
            kafka_port=base,
            controller_port=base + 1,
            postgres_port=base + 50,
            ingest_port=base + 60,
            tracker_port=base + 61,
            notifier_port=base + 62,
            samples_port=base + 70,
            object_store_port=base + 90 if profile.object_store_port else 0,
        )
        wanted = [port for part in stack_parts(moved).values() for port in part.values()]
        if len(set(wanted)) == len(wanted) and all(ports.is_free(port) for port in wanted):
            return moved
    pytest.fail("no block of 100 free ports between 20000 and 30000")


@contextmanager
def listening(port: int, host: str = "127.0.0.1") -> Iterator[None]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
        yield


def starter(profile: Profile, part: str) -> Callable[[], object]:
    """What starts `part` on its own (each checks its ports itself, just before starting)."""
    if part == "postgres":
        return lambda: postgres.start(profile)
    if part == "object-store":
        return lambda: s3store.start(profile)
    if part == "sample-images":
        return lambda: demo.serve_samples(profile)
    nodes = {kafka.node_name(profile, n): n for n in range(1, profile.brokers + 1)}
    if part in nodes:
        return lambda: kafka.start_node(profile, nodes[part])
    return lambda: services.start_one(profile, part)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_server_of_every_profile_has_its_ports_checked(layout):
    profile = LAYOUTS[layout]
    parts = stack_parts(profile)
    nodes = {kafka.node_name(profile, n) for n in range(1, profile.brokers + 1)}
    started = {"postgres", "sample-images", *nodes, *services.commands(profile)}
    if profile.object_store_port:
        started.add("object-store")
    assert set(parts) == started
    for name in services.commands(profile):  # a bridged host's metrics port is in its own namespace
        assert parts[name] or (profile.bridged and name.startswith("compressor")), name
    listed = [port for part in parts.values() for port in part.values()]
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_taken_port_stops_the_stack_before_anything_starts_in_one_line(layout):
    profile = relocated(LAYOUTS[layout])
    for part, part_ports in stack_parts(profile).items():
        if not part_ports:  # a bridged compressor host listens in its own namespace only
            continue
        label, port = next(iter(part_ports.items()))
        with listening(port):
            with pytest.raises(ports.PortsTaken) as whole:
                check_ports(profile)  # infra_up's first step
            with pytest.raises(ports.PortsTaken) as alone:
                starter(profile, part)()
        for message in (str(whole.value), str(alone.value)):
            assert message.startswith(f"port {port} ({label}) is taken by pid {os.getpid()} ("), message
            assert "\n" not in message, message
            assert message.count("is taken by") == 1, message
        assert not procs.running(profile.run_dir), part  # nothing was started
        assert not postgres.data_dir(profile).exists()  # not even initdb


def test_a_listener_on_another_address_counts_as_taken():
    profile = relocated(CLUSTER)  # Kafka's bridge listeners are on the bridge address, not loopback
    label, port = "kafka-2 bridge", stack_parts(profile)["kafka-2"]["kafka-2 bridge"]
    with listening(port, host="127.0.0.2"):
        with pytest.raises(
            ports.PortsTaken, match=rf"^port {port} \({label}\) is taken by pid {os.getpid()} \("
        ):
            check_ports(profile)
    check_ports(profile)  # released: free again


def test_ports_of_parts_already_running_are_not_asked_about():
    profile = relocated(PROFILES["test"])
    port = profile.ingest_port
    with listening(port):  # as our own running ingest would
        ports.check_parts(stack_parts(profile), lambda part: part == "ingest")
        with pytest.raises(ports.PortsTaken, match=f"port {port} "):
            ports.check_parts(stack_parts(profile), lambda part: False)
