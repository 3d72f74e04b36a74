"""The cluster profile for real: replicated topics, hosts apart, and a broker down losing nothing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from . import harness

pytestmark = pytest.mark.cluster


def test_topics_the_project_creates_have_the_replication_of_the_settings(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    meta = admin.list_topics(timeout=10)
    for name in (
        "image.requested",
        "image.results",
        "image.compressed",
        "request.completed",
        "__consumer_offsets",
    ):
        replicas = {len(p.replicas) for p in meta.topics[name].partitions.values()}
        assert replicas == {cluster.replication_factor} == {3}, name
    resource = ConfigResource("topic", "image.requested")
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["min.insync.replicas"].value == str(cluster.min_insync_replicas) == "2"
    assert config["unclean.leader.election.enable"].value == "false"


PROBE = """
import socket, sys
for host, port in [a.split(":") for a in sys.argv[1:]]:
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print("open")
    except OSError:
        print("closed")
"""


def test_a_compressor_host_reaches_the_cluster_only_over_the_bridge(cluster):
    from devstack import netns

    client, _controller, bridge = cluster.node_ports(1)
    targets = [f"127.0.0.1:{client}", f"10.77.0.1:{bridge}", f"10.77.0.1:{cluster.postgres_port}"]
    out = subprocess.run(  # noqa: S603 - our own namespace and interpreter
        [*netns.exec_prefix(1), sys.executable, "-c", PROBE, *targets],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    # the host's 127.0.0.1 is its own loopback: the broker's loopback listener is not there
    assert out == ["closed", "open", "open"]


async def test_with_one_broker_down_uploads_still_succeed_and_complete_exactly_once(
    cluster, origin, subscriber
):
    from devstack import kafka, procs

    victim = harness.busiest_leader()
    await asyncio.to_thread(procs.kill_hard, cluster.run_dir, kafka.node_name(cluster, victim))
    try:
        row = await harness.run_request("broker down", 50, origin, subscriber, timeout=240)
    finally:
        await asyncio.to_thread(kafka.start_node, cluster, victim)
    assert row["outcome"] == "ok", row
    assert row["duplicates counted"] == 0
    # every output is in the object store, readable by anyone holding its URL
    urls = [r["output_url"] for r in row["outputs"]]
    assert all(u.startswith(cluster.object_store_url + "/") for u in urls), urls[:3]
    async with httpx.AsyncClient(timeout=10) as client:  # anonymous: no key, no signature
        resp = await client.get(urls[0])
        # the output CSV (what the web page's gallery shows too) lists the same object-store URLs
        key = {"Authorization": f"Bearer {cluster.api_key()}"}
        csv = await client.get(row["output_csv_url"], headers=key)
    assert csv.status_code == 200
    assert sorted(url for url in re.findall(r"http://[^,\"\s]+", csv.text) if "/outputs/" in url) == sorted(
        set(urls)
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content[:3] == b"\xff\xd8\xff"
    assert await harness.wait_fully_replicated(), "the restarted broker did not catch up"
