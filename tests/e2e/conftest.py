"""The whole pipeline as processes (ingest, two compressors, tracker worker and API, notifier)."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def pipeline(infrastructure):
    """Every service of the test profile, started once for the session and stopped after."""
    from devstack import services

    profile = infrastructure
    shutil.rmtree(profile.run_dir / "tracker-data", ignore_errors=True)
    services.stop_all(profile)  # leftovers of an interrupted run
    services.start_all(
        profile,
        {
            "LOG_LEVEL": "INFO",
            "NOTIFIER_RETRY_SCHEDULE": "[0.3, 0.5, 0.5, 1]",
            "NOTIFIER_REQUEST_TIMEOUT": "1.5",
            "NOTIFIER_DISPATCH_IDLE_SECONDS": "0.2",
            "COMPRESSOR_RETRY_BASE_SECONDS": "0.2",
            "COMPRESSOR_RETRY_MAX_SECONDS": "2",
        },
    )
    yield profile
    if not os.environ.get("KEEP_TEST_STACK"):
        services.stop_all(profile)


@pytest.fixture
def ingest_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.ingest_port}"


@pytest.fixture
def tracker_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.tracker_port}"


@pytest.fixture
def webhook_secret(pipeline) -> str:
    return pipeline.webhook_secret()


@pytest.fixture
def notifier_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.notifier_port}"
