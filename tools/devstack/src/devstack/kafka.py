"""Apache Kafka in KRaft mode from Maven Central jars: fetch, format, start, wait, create topics."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from pipeline_schemas import TOPICS

from . import procs
from .profiles import CACHE_DIR, REPO_ROOT, Profile
from .system import ensure_commands

KAFKA_VERSION = "4.3.1"
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
READY_TIMEOUT = 120.0


def libs_dir() -> Path:
    return CACHE_DIR / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_jars() -> Path:
    """Resolve the broker's runtime classpath once; later starts download nothing."""
    target = libs_dir()
    marker = target / ".complete"
    if marker.exists():
        return target
    ensure_commands({"java": "openjdk-17-jre-headless", "mvn": "maven"})
    tmp = target.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(  # noqa: S603 - mvn from PATH by design (installed from Debian when missing)
        [  # noqa: S607
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
            f"-Dkafka.version={KAFKA_VERSION}",
        ],
        check=True,
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    marker.touch()
    return target


def server_properties(profile: Profile) -> str:
    data = profile.run_dir / "kafka-data"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{profile.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{profile.kafka_port},CONTROLLER://127.0.0.1:{profile.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{profile.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "",
        ]
    )


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


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def prepare(profile: Profile) -> Path:
    """Write the config and format storage (idempotent). Returns the properties file."""
    libs = ensure_jars()
    conf_dir = profile.run_dir / "kafka"
    conf_dir.mkdir(parents=True, exist_ok=True)
    props = conf_dir / "server.properties"
    props.write_text(server_properties(profile))
    (conf_dir / "log4j2.properties").write_text(LOG4J2)
    id_file = conf_dir / "cluster-id"
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


def java_command(libs: Path, conf_dir: Path, *, heap: str) -> list[str]:
    return [
        "java",
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={conf_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
    ]


def start(profile: Profile) -> None:
    """Start the broker unless KAFKA_BOOTSTRAP_SERVERS names one; then wait and create topics."""
    if profile.external_kafka is None and procs.read_pid(profile.run_dir, "kafka") is None:
        props = prepare(profile)
        argv = [*java_command(libs_dir(), props.parent, heap="768m"), "kafka.Kafka", str(props)]
        procs.start(profile.run_dir, "kafka", argv, {}, REPO_ROOT)
    wait_ready(profile.bootstrap_servers, profile=profile)
    create_topics(profile.bootstrap_servers)


def stop(profile: Profile) -> None:
    procs.stop(profile.run_dir, "kafka", grace=30.0)


def admin(bootstrap: str) -> AdminClient:
    # log_level 0 keeps librdkafka quiet while the broker is still starting
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, "log_level": 0})


def wait_ready(bootstrap: str, *, profile: Profile | None = None, timeout: float = READY_TIMEOUT) -> None:
    """Ask the broker for metadata until it answers with a live broker (bounded)."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if profile and profile.external_kafka is None and procs.read_pid(profile.run_dir, "kafka") is None:
            raise RuntimeError(f"Kafka exited during start-up; see {profile.run_dir / 'logs' / 'kafka.log'}")
        try:
            if client.list_topics(timeout=3).brokers:
                return
        except KafkaException as exc:
            last_error = exc
        time.sleep(0.3)
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last_error}")


def create_topics(bootstrap: str) -> None:
    """Create every registered topic with its partition count; grow partitions that are short."""
    client = admin(bootstrap)
    existing = client.list_topics(timeout=10).topics
    missing = [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=1)
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
