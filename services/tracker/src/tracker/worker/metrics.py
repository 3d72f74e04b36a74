"""The tracker worker's own counters (the shared ones are pipeline_runtime.metrics').

Their names are the contract of deploy/grafana's dashboard.
"""

from __future__ import annotations

from prometheus_client import Counter

RESULTS_RECORDED = Counter(
    "imgpipe_results_recorded_total",
    "Image results seen by the tracker (counted or duplicate).",
    ["service", "outcome"],
)
REQUESTS_COMPLETED = Counter(
    "imgpipe_requests_completed_total", "Requests finished, by status.", ["service", "status"]
)
