"""The notifier's own Prometheus counters (the shared HTTP and lag metrics are pipeline_runtime's)."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOK_ATTEMPTS = Counter(
    "imgpipe_webhook_attempts_total", "Webhook attempts by outcome.", ["service", "outcome"]
)
