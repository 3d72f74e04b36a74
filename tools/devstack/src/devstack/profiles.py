"""Where each stack lives: ports, run directory and the environment its services see."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
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

    @property
    def bootstrap_servers(self) -> str:
        return self.external_kafka or f"127.0.0.1:{self.kafka_port}"

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

    def service_env(self) -> dict[str, str]:
        """Environment every service of this stack is started with."""
        tracker_url = f"http://127.0.0.1:{self.tracker_port}"
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "FETCH_ALLOWLIST": "127.0.0.0/8",
            "LOG_FORMAT": "json",
            "INGEST_PORT": str(self.ingest_port),
            "INGEST_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ingest_port}",
            "INGEST_STATUS_BASE_URL": tracker_url,
            "COMPRESSOR_MEDIA_DIR": str(self.media_dir),
            "COMPRESSOR_MEDIA_BASE_URL": f"{tracker_url}/media",
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

    def _kept_secret(self, name: str, make) -> str:
        path = self.run_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make())
            path.chmod(0o600)
        return path.read_text().strip()

    def webhook_secret(self) -> str:
        """The stack's webhook signing secret, made once and kept in the run directory."""
        return self._kept_secret(
            "webhook-secret", lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        )


def test_profile(slot: int) -> Profile:
    """The test stack; IMGPIPE_TEST_SLOT=N gives parallel sessions their own ports and directory."""
    o = slot * 100
    name = "test" if slot == 0 else f"test-{slot}"
    return Profile(
        name, 19092 + o, 19093 + o, 55433 + o, 18000 + o, 18001 + o, 18002 + o, 18070 + o, fsync=False
    )


PROFILES = {
    "dev": Profile("dev", 9092, 9093, 55432, 8000, 8001, 8002, 8070, fsync=True),
    "test": test_profile(int(os.environ.get("IMGPIPE_TEST_SLOT", "0"))),
}
