"""The pipeline's own processes: what to run for each, and start/stop them as a group."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from pipeline_runtime.cpus import available_cpus

from . import netns, ports, procs
from .profiles import BRIDGE_ADDRESS, REPO_ROOT, Profile

# The CPUs this machine lets us use: its cores, capped by a cgroup CPU quota when devstack itself
# runs in a container (os.cpu_count() would count the host's cores).
CORES = available_cpus()


def members_for(cores: int) -> int:
    """Compressor members for a machine: one per two cores, at least 1, at most 4.

    Pillow decodes and (writing into a memfd) encodes without the GIL, so one member's event loop
    serves two Pillow threads; each member more costs its own loop, Kafka clients and broker
    requests. Measured with `make bench` on 2 cores (quiet machine, one run each): one member,
    CPU per image of every process 47.3 ms and rates 0.99 of raw Pillow; two members, 51.1-51.7 ms
    and 0.89-0.94. A member's Pillow threads default to the cores (COMPRESSOR_POOL_SIZE).
    """
    return max(1, min(cores // 2, 4))


COMPRESSOR_MEMBERS = members_for(CORES)


def member_count(profile: Profile) -> int:
    """The members one machine of `profile` runs (the test stack fixes its own count)."""
    return profile.compressor_members or COMPRESSOR_MEMBERS


# Pillow keeps up to 128 freed 1 MiB blocks (at most 128 MiB) instead of returning each image's
# memory to the OS, so the next decode does not fault fresh pages in. Small blocks suit a mix of
# sizes: Pillow resizes a cached block to the size it needs, and with 64 MiB blocks every change
# of image size remapped (and faulted) most of one. Measured in process over 100 images of the
# bench's mixed set: page faults per image 2144 (16 x 64 MiB) -> 157 (128 x 1 MiB) -> 25 with the
# allocator settings below; system CPU per image 5.5 ms -> 0.3 ms.
PILLOW_MEMORY = {"PILLOW_BLOCKS_MAX": "128", "PILLOW_BLOCK_SIZE": "1m"}
# glibc: two arenas rather than one per thread; buffers up to 4 MiB (socket reads, downloads,
# encoder output) come from the heap instead of a fresh mmap each (which faults every page in
# and unmaps it again), and up to 64 MiB of free heap is kept before trimming. Setting either
# threshold also stops glibc from moving them by itself. After a large image the member hands
# Pillow's cache and glibc's free pages back anyway (compressor.memory).
MEMBER_ALLOCATOR = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(4 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024),
}
TRACKER_WORKERS = 2


def commands(profile: Profile) -> dict[str, list[str]]:
    py = sys.executable
    table = {"ingest": [py, "-m", "ingest"]}
    if profile.bridged:  # one member per host, each in its own network namespace
        for host in range(1, profile.compressor_hosts + 1):
            table[f"compressor-{host}"] = [*netns.exec_prefix(host), py, "-m", "compressor"]
    else:
        for n in range(1, member_count(profile) + 1):
            table[f"compressor-{n}"] = [py, "-m", "compressor"]
    for n in range(1, TRACKER_WORKERS + 1):
        table[f"tracker-worker-{n}"] = [py, "-m", "tracker", "worker"]
    table["tracker-api"] = [py, "-m", "tracker", "api"]
    table["notifier"] = [py, "-m", "notifier"]
    return table


def health_urls(profile: Profile) -> dict[str, str]:
    return {
        "ingest": f"http://127.0.0.1:{profile.ingest_port}/healthz",
        "tracker-api": f"http://127.0.0.1:{profile.tracker_port}/healthz",
        "notifier": f"http://127.0.0.1:{profile.notifier_port}/healthz",
    }


def ports_of(profile: Profile) -> dict[str, dict[str, int]]:
    """Each service -> the ports it listens on in this namespace (a bridged host's are its own)."""
    http = {
        "ingest": profile.ingest_port,
        "tracker-api": profile.tracker_port,
        "notifier": profile.notifier_port,
    }
    parts: dict[str, dict[str, int]] = {}
    for name in commands(profile):
        if name in http:
            parts[name] = {name: http[name]}
        elif profile.bridged and name.startswith("compressor"):
            parts[name] = {}
        else:
            env = own_env(profile, name)
            key = "COMPRESSOR_METRICS_PORT" if name.startswith("compressor") else "TRACKER_METRICS_PORT"
            parts[name] = {f"{name} metrics": int(env[key])}
    return parts


def own_env(profile: Profile, name: str) -> dict[str, str]:
    """What differs between members of one service: each Faust worker keeps its own data directory."""
    member = int(name.rsplit("-", 1)[1]) if name[-1].isdigit() else 0
    if name.startswith("tracker-worker"):
        return {
            "TRACKER_DATA_DIR": str(profile.run_dir / "tracker-data" / name),
            "TRACKER_METRICS_PORT": str(profile.metrics_port_base + 10 + member),
        }
    if name.startswith("compressor") and profile.bridged:
        return {**host_env(profile, member), **PILLOW_MEMORY, **MEMBER_ALLOCATOR}
    if name.startswith("compressor"):
        return {
            "COMPRESSOR_METRICS_PORT": str(profile.metrics_port_base + member),
            **PILLOW_MEMORY,
            **MEMBER_ALLOCATOR,
        }
    return {}


def host_env(profile: Profile, host: int) -> dict[str, str]:
    """A compressor host sees the rest only through the bridge, and has a disk of its own
    (a scratch directory nothing else uses; its outputs go to the object store)."""
    scratch = profile.run_dir / "hosts" / f"h{host}"
    scratch.mkdir(parents=True, exist_ok=True)
    return {
        "KAFKA_BOOTSTRAP_SERVERS": profile.bridge_bootstrap_servers,
        "DATABASE_URL": f"postgresql://postgres@{BRIDGE_ADDRESS}:{profile.postgres_port}/imgpipe",
        "FETCH_ALLOWLIST": f"{BRIDGE_ADDRESS}/32",
        "COMPRESSOR_MEDIA_DIR": str(scratch / "media"),
        "COMPRESSOR_METRICS_PORT": str(profile.metrics_port_base),
        "METRICS_HOST": netns.host_address(host),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
    }


def remembered_env(profile: Profile) -> dict[str, str]:
    """Overrides given to the last start_all, so a service restarted alone gets them too."""
    path = profile.run_dir / "extra-env.json"
    return json.loads(path.read_text()) if path.exists() else {}


def start_one(profile: Profile, name: str, extra_env: dict[str, str] | None = None) -> int:
    if procs.read_pid(profile.run_dir, name) is None:
        ports.require_free(ports_of(profile).get(name, {}))
    env = {
        **profile.service_env(),
        "SERVICE_INSTANCE": name,
        **own_env(profile, name),
        **remembered_env(profile),
        **(extra_env or {}),
    }
    return procs.start(profile.run_dir, name, commands(profile)[name], env, REPO_ROOT)


def start_all(profile: Profile, extra_env: dict[str, str] | None = None) -> None:
    profile.media_dir.mkdir(parents=True, exist_ok=True)
    # every service's ports before starting any: a taken one is reported in one line, nothing started
    ports.check_parts(ports_of(profile), lambda name: procs.read_pid(profile.run_dir, name) is not None)
    (profile.run_dir / "extra-env.json").write_text(json.dumps(extra_env or {}))
    for name in commands(profile):
        start_one(profile, name, extra_env)
    wait_healthy(profile)


def wait_healthy(profile: Profile, timeout: float = 60.0) -> None:
    """Wait until every HTTP service answers /healthz and every process is alive (bounded)."""
    deadline = time.monotonic() + timeout
    pending = dict(health_urls(profile))
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            if procs.read_pid(profile.run_dir, name) is None:
                raise RuntimeError(f"{name} exited; see {profile.run_dir / 'logs' / (name + '.log')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                    if resp.status == 200:
                        del pending[name]
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not healthy after {timeout:.0f}s: {', '.join(pending)}")
    time.sleep(1.0)  # a worker that fails at start-up exits within this
    dead = [n for n in commands(profile) if procs.read_pid(profile.run_dir, n) is None]
    if dead:
        raise RuntimeError(f"exited during start-up: {', '.join(dead)}")


def is_infrastructure(name: str) -> bool:
    """Brokers and the object store: stopped by infra_down, after the services."""
    return name in ("kafka", "object-store") or name.startswith("kafka-")


def stop_all(profile: Profile) -> None:
    """Stop every service of the stack, including members started under names no longer in use."""
    names = [*reversed(list(commands(profile))), *procs.running(profile.run_dir)]
    ours = [name for name in dict.fromkeys(names) if not is_infrastructure(name)]
    with ThreadPoolExecutor(max_workers=len(ours) or 1) as pool:  # each has its own grace period
        list(pool.map(lambda name: procs.stop(profile.run_dir, name, grace=15.0), ours))
