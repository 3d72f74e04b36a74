"""What the test stacks run their services with, shared by tests/conftest.py and tests/cluster."""

from __future__ import annotations

# Fast retries so that faults settle within a test's wait; the production defaults are tested
# in-process. Uploads come in bursts with one key (schemathesis sends dozens at once), so the
# upload limits are raised here; the limits themselves are tested in-process
# (tests/integration/ingest/test_keys_and_limits.py).
SERVICE_ENV: dict[str, str] = {
    "LOG_LEVEL": "INFO",
    "NOTIFIER_RETRY_SCHEDULE": "[0.3, 0.5, 0.5, 1]",
    "NOTIFIER_REQUEST_TIMEOUT": "1.5",
    "NOTIFIER_DISPATCH_IDLE_SECONDS": "0.2",
    "COMPRESSOR_RETRY_BASE_SECONDS": "0.2",
    "COMPRESSOR_RETRY_MAX_SECONDS": "2",
    "INGEST_UPLOAD_RATE_PER_MINUTE": "6000",
    "INGEST_UPLOAD_BURST": "1000",
}
