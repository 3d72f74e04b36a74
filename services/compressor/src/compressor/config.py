"""Configuration of the compressor (COMPRESSOR_*, plus KAFKA_*, LOG_* and FETCH_ALLOWLIST)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pipeline_runtime.kafka import KafkaSettings
from pipeline_runtime.logconfig import LogSettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of one compressor group member."""

    model_config = SettingsConfigDict(env_prefix="COMPRESSOR_", env_file=".env", extra="ignore")

    group_id: str = Field("compressor", description="Kafka consumer group of all members.")
    media_dir: Path = Field(Path(".run/dev/media"), description="Where compressed files are written.")
    media_base_url: str = Field(
        "http://127.0.0.1:8001/media", description="Absolute URL that serves media_dir."
    )
    fetch_allowlist: str = Field(
        "",
        validation_alias="FETCH_ALLOWLIST",
        description="Comma-separated CIDRs that downloads may reach although they are not public.",
    )
    max_in_flight: int = Field(32, ge=1, description="Images being worked on at once (bounds memory).")
    pool: Literal["process", "thread"] = Field("process", description="Where Pillow runs.")
    pool_size: int = Field(os.cpu_count() or 2, ge=1, description="Pillow workers; default: cores.")
    connect_timeout: float = Field(5.0, description="Seconds to connect to an image host.")
    total_timeout: float = Field(30.0, description="Seconds for a whole download.")
    max_download_bytes: int = Field(50 * 1024 * 1024, description="Larger images fail `too_large`.")
    max_redirects: int = Field(5, ge=0, le=5)
    max_pixels: int = Field(60_000_000, description="Larger images fail `decompression_bomb`.")
    max_attempts: int = Field(4, ge=1, description="Tries for transient download failures.")
    retry_base_seconds: float = Field(0.5, description="First retry delay; doubles each time.")
    retry_max_seconds: float = Field(30.0, description="Longest single retry delay.")
    commit_interval: float = Field(0.5, description="Seconds between offset commits.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LogSettings = Field(default_factory=LogSettings)
