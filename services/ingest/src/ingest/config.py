"""Configuration of the ingest service (INGEST_*, plus KAFKA_*, LOG_* and DATABASE_URL)."""

from __future__ import annotations

from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.logconfig import LogSettings
from pipeline_runtime.serving import ServingSettings
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .admission import SchedulerSettings


class Settings(BaseSettings):
    """Settings of the ingest service."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, description="Port of the HTTP server.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="Absolute base URL clients reach this service at."
    )
    status_base_url: str = Field(
        "http://127.0.0.1:8001",
        description="Absolute base URL of the tracker API, used in status_url and output_csv_url.",
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:55432/imgpipe",
        validation_alias="DATABASE_URL",
        description="PostgreSQL DSN (shared name, no prefix).",
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, description="Uploads above this size get 413.")
    max_rows: int = Field(100_000, description="Most data rows accepted in one CSV.")
    max_errors: int = Field(
        100,
        ge=1,
        le=100,
        description="Most validation errors listed in one 422 answer (the rest are counted).",
    )
    max_product_name_length: int = Field(
        1024, ge=1, description="Longest product name accepted, in characters (422 naming the row beyond)."
    )
    max_urls_per_row: int = Field(
        100, ge=1, description="Most image URLs in one product row (422 naming the row beyond)."
    )
    default_quality: int = Field(50, ge=1, le=95, description="JPEG quality when none is given.")
    bootstrap_api_key: SecretStr | None = Field(
        None,
        validation_alias="BOOTSTRAP_API_KEY",
        description="When set, this API key exists with every scope for the default tenant (shared name).",
    )
    upload_rate_per_minute: float = Field(
        30.0,
        ge=0,
        description="Uploads a key regains per minute (token bucket in this process's memory; 0: no limit).",
    )
    upload_burst: int = Field(10, ge=1, description="Uploads a key may make at once before the rate applies.")
    max_concurrent_uploads_per_key: int = Field(
        4, ge=1, description="Uploads of one key in progress at once in this process (429 beyond)."
    )
    max_pending_images_per_tenant: int = Field(
        1_000_000,
        ge=1,
        description="Uploads get 429 while a tenant has this many images waiting, or would go beyond it.",
    )
    gateway_read_connections: int = Field(
        100, ge=1, description="Connections to the tracker API for plain reads (status, images, CSV, media)."
    )
    gateway_max_streams: int = Field(
        300,
        ge=1,
        description="Progress streams open through this process's gateway at once, all tenants; "
        "each has its own connection, never one of the plain reads'.",
    )
    gateway_max_streams_per_tenant: int = Field(
        30, ge=1, description="Progress streams one tenant may have open through this process (429 beyond)."
    )
    gateway_max_streams_per_key: int = Field(
        10, ge=1, description="Progress streams one API key may have open through this process (429 beyond)."
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed to call this API from a browser (CORS); empty: none."
    )
    relay_batch_size: int = Field(2000, description="Outbox rows published per relay transaction.")
    relay_idle_seconds: float = Field(0.5, description="Outbox poll interval when idle.")
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: ServingSettings = Field(default_factory=ServingSettings)
