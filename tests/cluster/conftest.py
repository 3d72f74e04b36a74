"""The cluster profile, started once for tests/cluster and stopped after (KEEP_CLUSTER=1 keeps it)."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tests.support.servers import LocalServer

from . import harness


def _why_not() -> str | None:
    """The cluster needs root (network namespaces, a bridge) and the `ip` command; and it is
    asked for: from a fresh start it takes about 3.5 minutes on a shared 2-core machine, over
    the 3 minutes a part of `make test` may take."""
    if not os.environ.get("IMGPIPE_CLUSTER_TESTS"):
        return "cluster tests take ~3.5 min: run them with `make cluster-test` (IMGPIPE_CLUSTER_TESTS=1)"
    if os.geteuid() != 0:
        return "the cluster profile creates network namespaces and a bridge: that needs root"
    if shutil.which("ip") is None:
        return "the cluster profile needs iproute2's `ip` command"
    return None


@pytest.fixture(scope="session")
async def cluster():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    seconds = await asyncio.to_thread(harness.start_cluster)
    print(f"cluster up in {seconds:.0f}s")
    yield harness.profile()
    if not os.environ.get("KEEP_CLUSTER"):
        await asyncio.to_thread(harness.stop_cluster)


@pytest.fixture(scope="session")
async def origin(cluster):
    server = await harness.image_origin(200)
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def subscriber(cluster):
    server = await LocalServer().start()
    yield server
    await server.stop()
