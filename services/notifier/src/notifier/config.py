"""Configuration of the notifier (NOTIFIER_*, plus KAFKA_*, LOG_*, HTTP_*, DATABASE_URL, FETCH_ALLOWLIST)."""

from __future__ import annotations

from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.logconfig import LogSettings
from pipeline_runtime.serving import ServingSettings
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the notifier."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8002, description="Port of the HTTP server.")
    group_id: str = Field("notifier", description="Kafka consumer group.")
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:55432/imgpipe",
        validation_alias="DATABASE_URL",
        description="PostgreSQL DSN (shared name, no prefix).",
    )
    fetch_allowlist: str = Field(
        "",
        validation_alias="FETCH_ALLOWLIST",
        description="Comma-separated CIDRs that webhook targets may be in although not public.",
    )
    signing_secret: SecretStr | None = Field(
        None,
        description="Migration only: the default tenant's first `whsec_<base64>` per-request signing secret"
        " (every other tenant's first secret is random; see POST /signing-secret).",
    )
    signing_secret_overlap_seconds: float = Field(
        86400.0,
        ge=0,
        le=30 * 86400,
        description="Seconds a tenant's previous signing secret keeps signing (next to the new one) after a rotation.",
    )
    bootstrap_api_key: SecretStr | None = Field(
        None,
        validation_alias="BOOTSTRAP_API_KEY",
        description="When set, this API key exists with every scope for the default tenant.",
    )
    secrets_key: SecretStr | None = Field(
        None,
        description="Fernet key encrypting subscription and tenant signing secrets at rest; both need it.",
    )
    retry_schedule: list[float] = Field(
        [5, 300, 1800, 7200, 18000, 36000, 36000],
        description="Seconds to wait before each retry (JSON list); its length + 1 is the attempt limit.",
    )
    request_timeout: float = Field(10.0, description="Seconds a subscriber has to answer.")
    max_concurrent_deliveries: int = Field(32, description="Deliveries in flight at once.")
    dispatch_idle_seconds: float = Field(0.5, description="Poll interval for due deliveries.")
    response_excerpt_bytes: int = Field(
        4096,
        ge=0,
        le=65536,
        description="Bytes of a subscriber's answer read and kept in the delivery log; the rest is never read.",
    )
    max_subscriptions_per_tenant: int = Field(
        25, ge=1, le=1000, description="Active subscriptions a tenant may have (409 beyond)."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: ServingSettings = Field(default_factory=ServingSettings)
