"""Apache Kafka in KRaft mode from Maven Central jars: fetch, format, start, wait, create topics."""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from pipeline_schemas import TOPICS

from . import ports, procs
from .profiles import BRIDGE_ADDRESS, CACHE_DIR, REPO_ROOT, Profile
from .system import maven_classpath

KAFKA_VERSION = "4.3.1"
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
READY_TIMEOUT = 120.0


def libs_dir() -> Path:
    return CACHE_DIR / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_jars() -> Path:
    """Resolve the broker's runtime classpath once; later starts download nothing."""
    return maven_classpath(POM, libs_dir(), {"kafka.version": KAFKA_VERSION})


def node_name(profile: Profile, node: int) -> str:
    """Process name of broker `node`: `kafka` on a single node (as before), `kafka-N` in a cluster."""
    return "kafka" if profile.brokers == 1 else f"kafka-{node}"


def ports_of(profile: Profile) -> dict[str, dict[str, int]]:
    """Each node this profile starts (none with KAFKA_BOOTSTRAP_SERVERS) -> the ports it listens on."""
    if profile.external_kafka is not None:
        return {}
    parts = {}
    for node in range(1, profile.brokers + 1):
        name, (client, controller, bridge) = node_name(profile, node), profile.node_ports(node)
        parts[name] = {name: client, f"{name} controller": controller}
        if profile.bridged:
            parts[name][f"{name} bridge"] = bridge
    return parts


def node_dir(profile: Profile, node: int) -> Path:
    return profile.run_dir / ("kafka" if profile.brokers == 1 else f"kafka-{node}")


def data_dir(profile: Profile, node: int) -> Path:
    return profile.run_dir / "kafka-data" if profile.brokers == 1 else node_dir(profile, node) / "data"


def server_properties(profile: Profile, node: int = 1) -> str:
    """One combined broker+controller; a cluster's nodes differ only in id, ports and directory."""
    client, controller, bridge = profile.node_ports(node)
    voters = ",".join(f"{n}@127.0.0.1:{profile.node_ports(n)[1]}" for n in range(1, profile.brokers + 1))
    listeners = [f"PLAINTEXT://127.0.0.1:{client}", f"CONTROLLER://127.0.0.1:{controller}"]
    advertised = [f"PLAINTEXT://127.0.0.1:{client}"]
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if profile.bridged:  # compressor hosts reach the broker over the bridge only
        listeners.append(f"BRIDGE://{BRIDGE_ADDRESS}:{bridge}")
        advertised.append(f"BRIDGE://{BRIDGE_ADDRESS}:{bridge}")
        protocols += ",BRIDGE:PLAINTEXT"
    rf, isr = profile.replication_factor, profile.min_insync_replicas
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            f"listeners={','.join(listeners)}",
            f"advertised.listeners={','.join(advertised)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            f"log.dirs={data_dir(profile, node)}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            # Every topic, the internal ones included, is replicated as the profile says; a write
            # is acknowledged once min.insync.replicas have it, and an out-of-sync replica never
            # becomes leader (that would silently drop acknowledged writes).
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={rf}",
            f"offsets.topic.num.partitions={1 if profile.brokers == 1 else 6}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            # Threads for a small host (defaults 3 and 8): the stack's whole load is a few hundred
            # requests a second, and every Fetch long poll waits in purgatory, not in a thread.
            # Two request handlers, not four: 3-16% less broker CPU per image on 2 cores (fewer
            # threads woken and switched between; docs/operations.md "Kafka clients and broker").
            "num.network.threads=2",
            "num.io.threads=2",
            # The active controller appends a no-op record to the metadata log this often (default
            # 500 ms) so that brokers can tell a live controller; every one is written, replicated
            # and applied by each node. Metadata only: no topic's writes or acks depend on it.
            "metadata.max.idle.interval.ms=5000",
            *extra_properties(),
            "",
        ]
    )


# Extra broker properties for a broker started by devstack, for measuring: `;`-separated
# `key=value` pairs appended last (in a properties file the last value of a key wins), e.g.
# `num.io.threads=4;num.network.threads=1`.
BROKER_PROPS_ENV = "IMGPIPE_KAFKA_BROKER_PROPS"


def extra_properties() -> list[str]:
    return [p.strip() for p in os.environ.get(BROKER_PROPS_ENV, "").split(";") if p.strip()]


LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""

# IMGPIPE_KAFKA_REQUEST_LOG=1 when a broker starts: it writes one line per completed request
# (client id, API, connection) to requests.log beside its config. For measuring what each client
# asks of the broker (bench/kafka_requests.py); it costs the broker CPU, so never in a CPU figure.
REQUEST_LOG_ENV = "IMGPIPE_KAFKA_REQUEST_LOG"
REQUEST_LOG4J2 = """\
appender.requests.type = File
appender.requests.name = REQUESTS
appender.requests.fileName = {path}
appender.requests.layout.type = PatternLayout
appender.requests.layout.pattern = %m%n
logger.request.name = kafka.request.logger
logger.request.level = debug
logger.request.additivity = false
logger.request.appenderRef.requests.ref = REQUESTS
"""


def log4j2_properties(conf_dir: Path) -> str:
    if os.environ.get(REQUEST_LOG_ENV, "") in ("", "0"):
        return LOG4J2
    return LOG4J2 + REQUEST_LOG4J2.format(path=conf_dir / "requests.log")


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def prepare(profile: Profile, node: int = 1) -> Path:
    """Write the node's config and format its storage (idempotent). Returns the properties file."""
    libs = ensure_jars()
    conf_dir = node_dir(profile, node)
    conf_dir.mkdir(parents=True, exist_ok=True)
    props = conf_dir / "server.properties"
    props.write_text(server_properties(profile, node))
    (conf_dir / "log4j2.properties").write_text(log4j2_properties(conf_dir))
    id_file = profile.run_dir / "kafka" / "cluster-id"  # one id for every node of the cluster
    id_file.parent.mkdir(parents=True, exist_ok=True)
    if not id_file.exists():
        id_file.write_text(new_cluster_id())
    subprocess.run(  # noqa: S603
        [
            *java_command(libs, conf_dir, heap="256m"),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            id_file.read_text().strip(),
            "-c",
            str(props),
            "--ignore-formatted",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return props


# Extra JVM options for a broker started by devstack, for measuring (e.g. `-XX:TieredStopAtLevel=4`
# to compare with the JVM's default compilers, `-XX:-UseSerialGC -XX:+UseG1GC` with G1).
JVM_OPTS_ENV = "IMGPIPE_KAFKA_JVM_OPTS"


def java_command(libs: Path, conf_dir: Path, *, heap: str) -> list[str]:
    return [
        "java",
        f"-Xmx{heap}",
        "-Xms128m",
        # The serial collector: a broker's garbage is young and its live set small, so a
        # stop-the-world young collection on one thread costs less than G1's write barriers,
        # concurrent marking and refinement threads on a 2-core host (docs/operations.md,
        # "Kafka clients and broker"); its pauses are milliseconds against seconds of timeouts.
        "-XX:+UseSerialGC",
        # The client compiler only: a devstack broker lives for one run of tests or benches, and
        # the optimizing compiler's warm-up cost it more CPU than its faster code saved. Measured
        # with bench/kafka_requests.py, fresh broker, 4 rounds of 100 images: 15.8, 11.9, 13.0 and
        # 8.5 ms of broker CPU per image with both compilers, 9.2, 5.4, 3.8 and 3.0 with C1 only.
        "-XX:TieredStopAtLevel=1",
        # ... and it compiles a method after a tenth of the usual calls and loops: the request
        # path (per-API handlers, their lambdas) otherwise ran interpreted for the first few
        # hundred images of a run, the broker's largest cost in the pipeline bench's window.
        "-XX:CompileThresholdScaling=0.1",
        "-Djava.awt.headless=true",
        *os.environ.get(JVM_OPTS_ENV, "").split(),
        f"-Dlog4j2.configurationFile={conf_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
    ]


def start_node(profile: Profile, node: int) -> None:
    if procs.read_pid(profile.run_dir, node_name(profile, node)) is None:
        ports.require_free(ports_of(profile)[node_name(profile, node)])
        props = prepare(profile, node)
        argv = [*java_command(libs_dir(), props.parent, heap=profile.heap), "kafka.Kafka", str(props)]
        procs.start(profile.run_dir, node_name(profile, node), argv, {}, REPO_ROOT)


def start(profile: Profile) -> None:
    """Start the broker(s) unless KAFKA_BOOTSTRAP_SERVERS names a cluster; wait; create topics."""
    if profile.external_kafka is None:
        for node in range(1, profile.brokers + 1):
            start_node(profile, node)
    wait_ready(profile.bootstrap_servers, profile=profile)
    rf, isr = replication(profile)
    create_topics(profile.bootstrap_servers, rf, isr)


def stop(profile: Profile) -> None:
    """Stop every node at once: one by one, the last ones lose their quorum and hang until killed."""
    names = [node_name(profile, node) for node in range(1, profile.brokers + 1)]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        list(pool.map(lambda name: procs.stop(profile.run_dir, name, grace=30.0), names))


def admin(bootstrap: str) -> AdminClient:
    # log_level 0 keeps librdkafka quiet while the broker is still starting
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, "log_level": 0})


def wait_ready(bootstrap: str, *, profile: Profile | None = None, timeout: float = READY_TIMEOUT) -> None:
    """Ask for metadata until every broker of the profile (at least one) has registered (bounded)."""
    client = admin(bootstrap)
    wanted = profile.brokers if profile and profile.external_kafka is None else 1
    deadline = time.monotonic() + timeout
    last_error: Exception | str | None = None
    while time.monotonic() < deadline:
        if profile and profile.external_kafka is None:
            for node in range(1, profile.brokers + 1):
                if procs.read_pid(profile.run_dir, node_name(profile, node)) is None:
                    log = profile.run_dir / "logs" / f"{node_name(profile, node)}.log"
                    raise RuntimeError(f"Kafka exited during start-up; see {log}")
        try:
            brokers = client.list_topics(timeout=3).brokers
            if len(brokers) >= wanted:
                return
            last_error = f"{len(brokers)} of {wanted} brokers registered"
        except KafkaException as exc:
            last_error = exc
        time.sleep(0.3)
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last_error}")


def resolve_replication(configured: tuple[int | None, int | None], brokers: int) -> tuple[int, int]:
    """Replication factor and min.insync.replicas for a cluster of `brokers`.

    Configured values win, and one the cluster cannot honour is an error (never silently
    lowered). Unset: three replicas where there are three brokers (fewer on a smaller cluster),
    and all but one of them in sync, so one broker may be down without stopping writes.
    """
    rf_set, isr_set = configured
    rf = rf_set if rf_set is not None else min(3, brokers)
    isr = isr_set if isr_set is not None else max(1, min(2, rf - 1))
    if rf > brokers:
        raise RuntimeError(f"replication factor {rf} needs {rf} brokers; the cluster has {brokers}")
    if not 1 <= isr <= rf:
        raise RuntimeError(f"min.insync.replicas {isr} must be between 1 and the replication factor {rf}")
    return rf, isr


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def replication(profile: Profile) -> tuple[int, int]:
    """The stack's replication: the environment's, else the profile's; an existing cluster
    (KAFKA_BOOTSTRAP_SERVERS) without settings gets one sized to its broker count."""
    configured = (_env_int("KAFKA_REPLICATION_FACTOR"), _env_int("KAFKA_MIN_INSYNC_REPLICAS"))
    if profile.external_kafka is None:
        defaults = (profile.replication_factor, profile.min_insync_replicas)
        configured = (configured[0] or defaults[0], configured[1] or defaults[1])
    brokers = len(admin(profile.bootstrap_servers).list_topics(timeout=10).brokers)
    rf, isr = resolve_replication(configured, brokers)
    profile.run_dir.mkdir(parents=True, exist_ok=True)
    (profile.run_dir / "kafka-replication").write_text(f"{rf} {isr}")  # for the services' env
    return rf, isr


def topic_config(min_insync_replicas: int) -> dict[str, str]:
    return {"min.insync.replicas": str(min_insync_replicas), "unclean.leader.election.enable": "false"}


def create_topics(bootstrap: str, replication_factor: int = 1, min_insync_replicas: int = 1) -> None:
    """Create every registered topic with its partition count and replication; grow partitions
    that are short."""
    client = admin(bootstrap)
    existing = client.list_topics(timeout=10).topics
    missing = [
        NewTopic(
            t.name,
            num_partitions=t.partitions,
            replication_factor=replication_factor,
            config=topic_config(min_insync_replicas),
        )
        for t in TOPICS.values()
        if t.name not in existing
    ]
    grow = [
        NewPartitions(t.name, t.partitions)
        for t in TOPICS.values()
        if t.name in existing and len(existing[t.name].partitions) < t.partitions
    ]
    futures = list(client.create_topics(missing).values()) if missing else []
    futures += list(client.create_partitions(grow).values()) if grow else []
    for future in futures:
        future.result(timeout=30)
