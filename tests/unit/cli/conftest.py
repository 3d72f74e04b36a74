"""Runs the imgpipe command in-process (typer's CliRunner) against the fake pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from imgpipe_cli.app import app
from typer.testing import CliRunner, Result

from tests.unit.cli.fake_pipeline import API_URL, INGEST_URL, FakePipeline


@pytest.fixture
def fake() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def imgpipe(fake: FakePipeline) -> Callable[..., Result]:
    """imgpipe(*args, env={...}) → the CliRunner result; URLs come from the environment variables."""
    runner = CliRunner()

    def run(*args: Any, env: dict[str, str | None] | None = None) -> Result:
        environment = {
            "COLUMNS": "200",
            "IMGPIPE_INGEST_URL": INGEST_URL,
            "IMGPIPE_API_URL": API_URL,
            "IMGPIPE_API_KEY": None,
            **(env or {}),
        }
        return runner.invoke(
            app, [str(arg) for arg in args], obj={"transport": fake.transport()}, env=environment
        )

    return run
