"""Where each stack lives: ports, run directory and the environment its services see."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
# The network the cluster profile creates for its compressor hosts (netns.py): the bridge holds
# .1 in the root namespace; host n is .(10 + n) in its own namespace.
BRIDGE_PREFIX = "10.77.0"
BRIDGE_ADDRESS = f"{BRIDGE_PREFIX}.1"
BRIDGE_CIDR = f"{BRIDGE_PREFIX}.0/24"
CACHE_DIR = Path(os.environ.get("IMGPIPE_CACHE_DIR", Path.home() / ".cache" / "imgpipe"))


@dataclass(frozen=True)
class Profile:
    """One isolated stack. `dev` serves `make up`; `test` serves `make test`, so both can run."""

    name: str
    kafka_port: int
    controller_port: int
    postgres_port: int
    ingest_port: int
    tracker_port: int
    notifier_port: int
    samples_port: int
    fsync: bool
    brokers: int = 1
    replication_factor: int = 1
    min_insync_replicas: int = 1
    object_store_port: int = 0  # 0: no object store; outputs go to media_dir, served at /media
    compressor_hosts: int = 0  # >0: compressor members each in its own network namespace
    compressor_members: int = 0  # >0: this many members on one machine, whatever its cores
    heap: str = "768m"

    @property
    def bridged(self) -> bool:
        return self.compressor_hosts > 0

    @property
    def run_dir(self) -> Path:
        return REPO_ROOT / ".run" / self.name

    @property
    def external_kafka(self) -> str | None:
        """Bootstrap servers given by the environment: then no broker is started."""
        return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None

    @property
    def external_database(self) -> str | None:
        """A DATABASE_URL given by the environment: then no PostgreSQL is started."""
        return os.environ.get("DATABASE_URL") or None

    def node_ports(self, node: int) -> tuple[int, int, int]:
        """(client, controller, bridge) ports of broker `node` (1-based): three apart per node."""
        base = self.kafka_port + 3 * (node - 1)
        return base, base + 1, base + 2

    @property
    def bootstrap_servers(self) -> str:
        nodes = range(1, self.brokers + 1)
        return self.external_kafka or ",".join(f"127.0.0.1:{self.node_ports(n)[0]}" for n in nodes)

    @property
    def bridge_bootstrap_servers(self) -> str:
        """What a compressor host sees: each broker's listener on the bridge address."""
        nodes = range(1, self.brokers + 1)
        return ",".join(f"{BRIDGE_ADDRESS}:{self.node_ports(n)[2]}" for n in nodes)

    @property
    def database_url(self) -> str:
        return self.external_database or f"postgresql://postgres@127.0.0.1:{self.postgres_port}/imgpipe"

    @property
    def metrics_port_base(self) -> int:
        """Worker processes (no HTTP server of their own) serve /metrics from here up."""
        return self.kafka_port + 20

    @property
    def media_dir(self) -> Path:
        return self.run_dir / "media"

    @property
    def object_store_url(self) -> str:
        """The S3 endpoint, on the bridge address when there is one (see s3store.py)."""
        host = BRIDGE_ADDRESS if self.bridged else "127.0.0.1"
        return f"http://{host}:{self.object_store_port}"

    def object_store_credentials(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "imgpipe",
            "AWS_SECRET_ACCESS_KEY": self._kept_secret("s3-secret", lambda: secrets.token_urlsafe(24)),
        }

    def replication_env(self) -> dict[str, str]:
        """KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS: the environment's, else the ones
        resolved for an existing cluster (kafka.replication), else this profile's."""
        resolved = self.run_dir / "kafka-replication"
        rf, isr = self.replication_factor, self.min_insync_replicas
        if self.external_kafka and resolved.exists():
            rf, isr = (int(v) for v in resolved.read_text().split())
        return {
            "KAFKA_REPLICATION_FACTOR": os.environ.get("KAFKA_REPLICATION_FACTOR") or str(rf),
            "KAFKA_MIN_INSYNC_REPLICAS": os.environ.get("KAFKA_MIN_INSYNC_REPLICAS") or str(isr),
        }

    def object_store_env(self) -> dict[str, str]:
        if not self.object_store_port:
            return {}
        return {
            "COMPRESSOR_STORAGE_URL": f"s3://{OBJECT_STORE_BUCKET}/outputs",
            "COMPRESSOR_S3_ENDPOINT_URL": self.object_store_url,
            "COMPRESSOR_S3_REGION": "us-east-1",
            # s3proxy serves public-read objects to anonymous GETs: output URLs open in a browser
            "COMPRESSOR_S3_ACL": "public-read",
            # s3proxy 2.7 refuses the checksum headers that botocore sends by default
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
            **self.object_store_credentials(),
        }

    def service_env(self) -> dict[str, str]:
        """Environment every service of this stack is started with."""
        tracker_url = f"http://127.0.0.1:{self.tracker_port}"
        return {
            **self.replication_env(),
            **self.object_store_env(),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "FETCH_ALLOWLIST": f"127.0.0.0/8,{BRIDGE_CIDR}" if self.bridged else "127.0.0.0/8",
            "LOG_FORMAT": "json",
            "INGEST_PORT": str(self.ingest_port),
            "INGEST_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ingest_port}",
            "INGEST_STATUS_BASE_URL": tracker_url,
            "COMPRESSOR_MEDIA_DIR": str(self.media_dir),
            "COMPRESSOR_MEDIA_BASE_URL": f"{tracker_url}/media",
            "COMPRESSOR_MEDIA_KEY_SECRET": self.media_key_secret(),
            "TRACKER_PORT": str(self.tracker_port),
            "TRACKER_PUBLIC_BASE_URL": tracker_url,
            "TRACKER_MEDIA_DIR": str(self.media_dir),
            "TRACKER_DATA_DIR": str(self.run_dir / "tracker-data"),
            "NOTIFIER_PORT": str(self.notifier_port),
            "NOTIFIER_SIGNING_SECRET": self.webhook_secret(),
            "BOOTSTRAP_API_KEY": self.api_key(),
            "NOTIFIER_SECRETS_KEY": self._kept_secret(
                "secrets-key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            ),
        }

    def api_key(self) -> str:
        """The stack's bootstrap API key (every scope, default tenant), made once and kept."""
        return self._kept_secret(
            "api-key",
            lambda: "imgp_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
        )

    def _kept_secret(self, name: str, make: Callable[[], str]) -> str:
        path = self.run_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make())
            path.chmod(0o600)
        return path.read_text().strip()

    def media_key_secret(self) -> str:
        """Keys the compressor's output names; kept in the run directory so re-runs overwrite."""
        return self._kept_secret("media-key-secret", lambda: secrets.token_urlsafe(32))

    def webhook_secret(self) -> str:
        """The stack's webhook signing secret, made once and kept in the run directory."""
        return self._kept_secret(
            "webhook-secret", lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        )


def test_profile(slot: int) -> Profile:
    """The test stack; IMGPIPE_TEST_SLOT=N gives parallel sessions their own ports and directory."""
    o = slot * 100
    name = "test" if slot == 0 else f"test-{slot}"
    # Two members whatever the cores: the tests prove what a group of members does (dedupe across
    # members, a member killed mid-flight, rebalances).
    return Profile(
        name,
        19092 + o,
        19093 + o,
        55433 + o,
        18000 + o,
        18001 + o,
        18002 + o,
        18070 + o,
        fsync=False,
        compressor_members=2,
    )


OBJECT_STORE_BUCKET = "imgpipe-media"

# The cluster profile: ports from 2xxxx, apart from dev (8xxx/9xxx) and every test slot (18xxx-19xxx).
CLUSTER = Profile(
    "cluster",
    kafka_port=29092,
    controller_port=29093,
    postgres_port=25432,
    ingest_port=28000,
    tracker_port=28001,
    notifier_port=28002,
    samples_port=28070,
    fsync=False,
    brokers=3,
    replication_factor=3,
    min_insync_replicas=2,
    object_store_port=28090,
    compressor_hosts=3,
    heap="512m",
)

PROFILES = {
    "dev": Profile("dev", 9092, 9093, 55432, 8000, 8001, 8002, 8070, fsync=True),
    "test": test_profile(int(os.environ.get("IMGPIPE_TEST_SLOT", "0"))),
    "cluster": CLUSTER,
}
