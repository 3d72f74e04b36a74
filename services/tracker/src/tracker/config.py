"""Configuration of the tracker (TRACKER_*, plus KAFKA_*, LOG_* and DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path

from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.logconfig import LogSettings
from pipeline_runtime.serving import ServingSettings
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the tracker worker and its status API."""

    model_config = SettingsConfigDict(env_prefix="TRACKER_", env_file=".env", extra="ignore")

    app_id: str = Field("tracker", description="Faust app id: the consumer group of tracker workers.")
    host: str = Field("127.0.0.1", description="Interface the status API binds to.")
    port: int = Field(8001, description="Port of the status API.")
    public_base_url: str = Field(
        "http://127.0.0.1:8001", description="Absolute base URL clients reach the status API at."
    )
    media_dir: Path = Field(Path(".run/dev/media"), description="Compressed images served at /media.")
    data_dir: Path = Field(Path(".run/dev/tracker-data"), description="Faust's local data directory.")
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:55432/imgpipe",
        validation_alias="DATABASE_URL",
        description="PostgreSQL DSN (shared name, no prefix).",
    )
    bootstrap_api_key: SecretStr | None = Field(
        None,
        validation_alias="BOOTSTRAP_API_KEY",
        description="When set, the status API makes this API key exist with every scope for the default tenant.",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins allowed to call the status API from a browser (CORS); empty: none.",
    )
    metrics_port: int = Field(0, description="Port of the worker's /metrics endpoint (0: none).")
    relay_idle_seconds: float = Field(
        5.0,
        gt=0,
        description="Outbox poll interval when idle: only a fallback, since commits wake the relay"
        " (its own worker at once, any other process by PostgreSQL NOTIFY).",
    )
    fetch_gather_ms: int = Field(
        0,
        ge=0,
        le=1000,
        description="While results keep coming, how long a fetch waits for more (one transaction for"
        " all); a fetch that brought none goes back to waiting for the first. 0 (default): off, each"
        " fetch returns with what is there; worth it only where results arrive one at a time.",
    )
    events_max_seconds: float = Field(
        600.0,
        gt=0,
        description="Longest a progress stream (/requests/{id}/events) stays open; clients reconnect.",
    )
    events_max_per_key: int = Field(
        4, ge=1, description="Progress streams one API key may hold open at once (429 beyond)."
    )
    events_max_per_tenant: int = Field(
        16, ge=1, description="Progress streams one tenant's keys may hold open at once (429 beyond)."
    )
    events_max_open: int = Field(
        500, ge=1, description="Progress streams one status API process holds open at most (429 beyond)."
    )
    events_pool_size: int = Field(
        2,
        ge=1,
        description="PostgreSQL connections the progress streams poll through, apart from those of plain reads.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: ServingSettings = Field(default_factory=ServingSettings)  # the status API's client timeouts
