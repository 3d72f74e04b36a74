"""What each image costs the Kafka broker: requests by client and API, and the broker's CPU (issue 14).

Not a `make bench` section (the name has no `_bench`): a measuring tool for the Kafka settings.

    IMGPIPE_TEST_SLOT=N [IMGPIPE_KAFKA_REQUEST_LOG=1] .venv/bin/python bench/kafka_requests.py \
        [--images 100] [--rounds 2] [--idle 10] [--fresh]

It starts the `test` stack as the pipeline bench does (devstack; `--fresh` stops a running broker
first, so its JIT warm-up lands in the figures), then measures the broker while idle for `--idle`
seconds and while one CSV of `--images` bench images goes from upload to completion, `--rounds`
times on the same broker. A broker started with IMGPIPE_KAFKA_REQUEST_LOG=1 (devstack writes a
request logger into its log4j2 configuration) logs every request; the tool counts them per client
process (the connection's local port, mapped to a pid through `ss`) and API. That logging costs the
broker CPU, so CPU figures come from runs without it. IMGPIPE_KAFKA_JVM_OPTS adds JVM options to a
broker it starts (e.g. `-XX:TieredStopAtLevel=4` to compare with the JVM's default compilers);
BENCH_TOP_THREADS how many of the broker's busiest threads are printed (6; 25 shows the idle
broker's many small timers).
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    15: "DescribeGroups",
    16: "ListGroups",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
    32: "DescribeConfigs",
    55: "DescribeQuorum",
    60: "DescribeCluster",
    62: "BrokerRegistration",
    63: "BrokerHeartbeat",
    68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe",
    71: "GetTelemetrySubscriptions",
    72: "PushTelemetry",
}
TOP_THREADS = int(os.environ.get("BENCH_TOP_THREADS", "6"))  # broker threads printed per window
SS_EVERY = 0.5  # seconds between snapshots of the client connections
MAX_LOG_BYTES = 512 * 1024 * 1024  # never read more than this of the request log in one window


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Java names of the broker's threads by thread id: /proc cuts names at 15 characters, which folds
# the network threads and the request handlers into one `data-plane-kafk`.
JAVA_THREAD_NAMES: dict[int, str] = {}


def learn_thread_names(pid: int) -> None:
    """Ask the JVM (jcmd Thread.print) once, before any measured window: it costs the broker CPU."""
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        return  # the /proc names then
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            [jcmd, str(pid), "Thread.print"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return  # the /proc names then
    for name, nid in re.findall(r'^"([^"]+)".* nid=(0x[0-9a-f]+)', out, flags=re.MULTILINE):
        JAVA_THREAD_NAMES[int(nid, 16)] = name.removeprefix("data-plane-kafka-")


def thread_cpu(pid: int) -> Counter:
    """CPU seconds so far of the process's threads, grouped by name with digits folded (C2 compilers,
    GC, request handlers, network processors, ...)."""
    tick = os.sysconf("SC_CLK_TCK")
    usage: Counter = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = JAVA_THREAD_NAMES.get(int(task.name)) or stat[stat.index("(") + 1 : stat.rindex(")")]
        name = re.sub(r"\d+", "N", name)
        fields = stat.rsplit(")", 1)[1].split()
        usage[name] += (int(fields[11]) + int(fields[12])) / tick
    return usage


def print_threads(before: Counter, after: Counter, per: float, unit: str) -> None:
    spent = Counter({name: after[name] - before.get(name, 0.0) for name in after})
    top = ", ".join(
        f"{name.strip()} {1000 * s / per:.2f}" for name, s in spent.most_common(TOP_THREADS) if s > 0
    )
    print(f"  broker threads, ms per {unit}: {top}")


class ConnectionOwners:
    """Which pid held each local port that talked to the broker (ss snapshots on a thread)."""

    def __init__(self, broker_port: int) -> None:
        self._broker = f":{broker_port}"
        self.owners: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ss-watch", daemon=True)

    def __enter__(self) -> "ConnectionOwners":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.snapshot()
            self._stop.wait(SS_EVERY)

    def snapshot(self) -> None:
        out = subprocess.run(  # noqa: S603 - fixed argv
            ["/usr/bin/ss", "-tnpH"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[4].endswith(self._broker) or "pid=" not in parts[5]:
                continue
            port = int(parts[3].rsplit(":", 1)[1])
            self.owners[port] = int(parts[5].split("pid=", 1)[1].split(",", 1)[0])


class RequestLog:
    """Reads the broker's request log from where the last window ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0

    @property
    def enabled(self) -> bool:
        """Whether the running broker logs requests (its log4j2 configuration names the logger)."""
        conf = self.path.parent / "log4j2.properties"
        return conf.exists() and "kafka.request.logger" in conf.read_text()

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read(MAX_LOG_BYTES)
        entries = []
        for line in data.decode(errors="replace").splitlines():
            _, sep, body = line.partition("Completed request:")
            if sep:
                try:
                    entries.append(json.loads(body))
                except ValueError:
                    continue
        return entries


def count_requests(entries: list[dict], owners: dict[int, int], names: dict[int, str]) -> Counter:
    """(client process, client id, API) -> requests."""
    counts: Counter = Counter()
    for entry in entries:
        header = entry.get("requestHeader", {})
        api = API_NAMES.get(header.get("requestApiKey"), f"api{header.get('requestApiKey')}")
        client = header.get("clientId", "?")
        connection = str(entry.get("connection", ""))  # broker ip:port-client ip:port-index
        try:
            port = int(connection.split("-")[1].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            port = -1
        pid = owners.get(port)
        who = names.get(pid, f"pid {pid}") if pid else "broker itself / unknown"
        counts[who, client, api] += 1
    return counts


def print_counts(title: str, counts: Counter, per: float, unit: str) -> None:
    total = sum(counts.values())
    print(f"  {title}: {total} requests, {total / per:.2f} per {unit}")
    for (who, client, api), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if n / per >= 0.005:
            print(f"    {who:<22} {client:<34} {api:<24} {n:6d} {n / per:8.3f}/{unit}")


def process_names(profile) -> dict[int, str]:
    from devstack import procs

    names = {pid: name for name, pid in procs.running(profile.run_dir).items()}
    names[os.getpid()] = "this tool"
    return names


def stop_broker(profile) -> None:
    from devstack import kafka, services

    services.stop_all(profile)
    kafka.stop(profile)


def measure(args: argparse.Namespace) -> None:
    from devstack import kafka, procs
    from devstack.profiles import PROFILES

    from bench.pipeline_bench import (
        cpu_by_component,
        ensure_images,
        group,
        image_server,
        plan,
        product_csv,
        stack_roots,
        start_stack,
        upload_and_wait,
    )

    profile = PROFILES["test"]
    if args.fresh:
        stop_broker(profile)
    specs = plan(args.images)
    ensure_images(specs)
    started = time.monotonic()
    profile = start_stack({})
    broker = procs.read_pid(profile.run_dir, "kafka")
    assert broker is not None, "no broker of this stack is running"
    print(f"stack up in {time.monotonic() - started:.1f}s; broker pid {broker}; load {os.getloadavg()}")
    learn_thread_names(broker)
    log = RequestLog(kafka.node_dir(profile, 1) / "requests.log")
    names = process_names(profile)
    roots = stack_roots(profile)
    with image_server() as base, ConnectionOwners(profile.kafka_port) as conns:
        conns.snapshot()
        time.sleep(args.settle)  # the consumer groups finish joining; not part of any window
        if args.idle:
            log.mark()
            before, cpu, threads = cpu_by_component(roots), process_cpu(broker), thread_cpu(broker)
            time.sleep(args.idle)
            cpu = process_cpu(broker) - cpu
            spent = group({k: v - before.get(k, 0.0) for k, v in cpu_by_component(roots).items()})
            others = ", ".join(f"{k} {1000 * v / args.idle:.1f}" for k, v in sorted(spent.items()))
            print(f"\nidle {args.idle:.0f}s: broker {1000 * cpu / args.idle:.1f} ms CPU per second")
            print(f"  every process, ms per s: {others}")
            print_threads(threads, thread_cpu(broker), args.idle, "s")
            if log.enabled:
                print_counts("idle", count_requests(log.since_mark(), conns.owners, names), args.idle, "s")
        for n in range(1, args.rounds + 1):
            log.mark()
            before, cpu, threads = cpu_by_component(roots), process_cpu(broker), thread_cpu(broker)
            seconds, status = asyncio.run(upload_and_wait(profile, product_csv(base, specs)))
            cpu = process_cpu(broker) - cpu
            after = group({k: v - before.get(k, 0.0) for k, v in cpu_by_component(roots).items()})
            conns.snapshot()
            print(
                f"\nround {n}: {len(specs)} images in {seconds:.1f}s ({status['status']}); "
                f"broker {1000 * cpu / len(specs):.2f} ms CPU per image ({cpu:.2f} s); "
                f"tracker workers {1000 * after.get('tracker-workers', 0) / len(specs):.2f} ms/image; "
                f"load {os.getloadavg()[0]:.2f}"
            )
            print_threads(threads, thread_cpu(broker), len(specs), "image")
            if log.enabled:
                counts = count_requests(log.since_mark(), conns.owners, names)
                print_counts(f"round {n}", counts, len(specs), "image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement (0: none)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait after the start")
    parser.add_argument("--fresh", action="store_true", help="restart the broker first")
    sys.path.insert(0, str(REPO))
    from bench.pipeline_bench import run_measuring_tool

    run_measuring_tool(parser, measure)


if __name__ == "__main__":
    main()
