"""Configuration of the compressor (COMPRESSOR_*, plus KAFKA_*, LOG_*, DATABASE_URL and FETCH_ALLOWLIST)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipeline_runtime.cpus import available_cpus
from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.logconfig import LogSettings
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .storage import MIN_MEDIA_KEY_SECRET, StorageSettings


class Settings(BaseSettings):
    """Settings of one compressor group member."""

    model_config = SettingsConfigDict(env_prefix="COMPRESSOR_", env_file=".env", extra="ignore")

    group_id: str = Field("compressor", description="Kafka consumer group of all members.")
    storage_url: str = Field(
        "",
        description="file:///absolute/dir or s3://bucket/prefix; empty: file store in media_dir.",
    )
    media_dir: Path = Field(Path(".run/dev/media"), description="Where compressed files are written.")
    media_base_url: str = Field(
        "http://127.0.0.1:8001/media", description="Absolute URL that serves the file store."
    )
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint; empty: AWS.")
    s3_region: str = Field("us-east-1")
    s3_public_base_url: str = Field(
        "", description="Base of output URLs (e.g. a CDN); empty: endpoint/bucket, path-style."
    )
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field("path")
    s3_acl: str = Field("", description="Canned ACL for each object (e.g. public-read); empty: none.")
    media_key_secret: SecretStr | None = Field(
        None,
        description=(
            "Required, at least 32 characters: keys the output object names so they cannot be "
            "computed from a request id and URL. Keep it stable (re-runs overwrite the same objects)."
        ),
    )
    database_url: str = Field(
        "",
        validation_alias="DATABASE_URL",
        description="PostgreSQL for per-request URL claims (dedupe); empty: no cross-member dedupe.",
    )
    dedupe: bool = Field(True, description="Download a URL repeated within a request once.")
    claim_lease_seconds: float = Field(90.0, gt=0, description="How long a URL claim outlives silence.")
    claims_retention_days: int = Field(7, ge=1, description="Claims older than this are deleted on start.")
    fetch_allowlist: str = Field(
        "",
        validation_alias="FETCH_ALLOWLIST",
        description="Comma-separated CIDRs that downloads may reach although they are not public.",
    )
    max_restarts: int = Field(
        3, ge=1, description="Starts of one image beyond its attempts before it fails `worker_crashed`."
    )
    max_in_flight: int = Field(32, ge=1, description="Images being worked on at once (bounds memory).")
    max_inflight_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1,
        description=(
            "Bytes the images being compressed may take at once: downloaded size plus working size "
            "(from the header: the decoded pixels and the copies converting them needs). More wait; "
            "one larger image runs alone."
        ),
    )
    trim_after_bytes: int = Field(
        128 * 1024 * 1024,
        ge=0,
        description=(
            "After an image that took this much, memory goes back to the OS (malloc_trim) once the "
            "member has no image in flight; 0: never."
        ),
    )
    max_parked: int = Field(10_000, ge=1, description="Messages waiting for a retry time, at most.")
    pool: Literal["process", "thread"] = Field(
        "thread",
        description=(
            "Where Pillow runs. Threads (Pillow releases the GIL while it decodes and encodes) cost "
            "~15% less CPU per image than processes, which copy every image through a pipe both ways "
            "(bench/pipeline_bench.py); processes isolate a crashing decoder from the member."
        ),
    )
    pool_size: int = Field(
        default_factory=available_cpus,
        ge=1,
        description=(
            "Pillow workers; default: the CPUs this member may use (its cores, capped by the "
            "container's CPU limit: the cgroup quota)."
        ),
    )
    connect_timeout: float = Field(5.0, description="Seconds to connect to an image host.")
    total_timeout: float = Field(30.0, description="Seconds for a whole download.")
    max_download_bytes: int = Field(50 * 1024 * 1024, description="Larger images fail `too_large`.")
    max_redirects: int = Field(5, ge=0, le=5)
    max_pixels: int = Field(60_000_000, description="Larger images fail `decompression_bomb`.")
    compress_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description=(
            "Longer decode + encode fails the image `compress_timeout` (AVIF of 60 MP at speed 8 on "
            "one thread: about 10 s of CPU; quality=auto adds up to 4 trials on a 0.26 MP proxy)."
        ),
    )
    auto_ssim_threshold: float = Field(
        0.84,
        gt=0,
        lt=1,
        description=(
            "quality=auto: the lowest SSIM (luma, vs the input) an output may have; 0.84 is what "
            "JPEG q50 reaches on over 90 % of the bench set (docs/api.md)."
        ),
    )
    max_attempts: int = Field(4, ge=1, description="Tries for transient failures, the first included.")
    retry_base_seconds: float = Field(0.5, description="First retry delay; doubles each time.")
    retry_max_seconds: float = Field(30.0, description="Longest backoff between attempts.")
    retry_after_max_seconds: float = Field(
        120.0, description="A longer Retry-After fails the image `rate_limited` instead of waiting."
    )
    commit_interval: float = Field(0.5, description="Seconds between offset commits.")
    result_hold_seconds: float = Field(
        0.2,
        ge=0,
        le=1,
        description=(
            "Longest a result waits for the member's other images, to share a Kafka request with "
            "theirs; never while nothing else is at work. 0: every result is sent alone."
        ),
    )
    metrics_port: int = Field(0, description="Port of this member's /metrics endpoint (0: none).")
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="Kafka group session: how soon a dead member's partitions move."
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight work may finish before it is handed back."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    def media_secret(self) -> bytes:
        """The media key secret, or a ValueError saying what to set: members never run without one."""
        secret = self.media_key_secret.get_secret_value() if self.media_key_secret else ""
        if len(secret) < MIN_MEDIA_KEY_SECRET:
            raise ValueError(
                f"COMPRESSOR_MEDIA_KEY_SECRET must be set to at least {MIN_MEDIA_KEY_SECRET} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), the same on every member"
            )
        return secret.encode()

    def storage(self) -> StorageSettings:
        return StorageSettings(
            storage_url=self.storage_url,
            media_dir=self.media_dir,
            media_base_url=self.media_base_url,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            s3_public_base_url=self.s3_public_base_url,
            s3_addressing_style=self.s3_addressing_style,
            s3_acl=self.s3_acl,
            max_connections=self.max_in_flight,
        )
