"""Prometheus metrics every service shares: HTTP traffic, stage latencies, Kafka consumer lag, backlogs.

Metric names are the contract of deploy/prometheus and the Grafana dashboard; services add their
own counters next to these. HTTP services serve /metrics themselves; worker processes without an
HTTP server call `serve_metrics(port)`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered.", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
IMAGES_PROCESSED = Counter("imgpipe_images_processed_total", "Images compressed and stored.", ["service"])
IMAGES_FAILED = Counter(
    "imgpipe_images_failed_total", "Images that failed, by reason code.", ["service", "reason"]
)
BYTES_IN = Counter("imgpipe_image_bytes_in_total", "Bytes of source images downloaded.", ["service"])
BYTES_OUT = Counter("imgpipe_image_bytes_out_total", "Bytes of compressed images stored.", ["service"])
STAGE_LATENCY = Histogram(
    "imgpipe_stage_duration_seconds",
    "Time spent per stage (download, compress, store, end_to_end).",
    ["service", "stage"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "imgpipe_consumer_lag_messages",
    "Messages behind the end of each assigned partition.",
    ["service", "topic", "partition"],
)
OUTBOX_BACKLOG = Gauge("imgpipe_outbox_backlog_rows", "Outbox rows not yet published to Kafka.", ["service"])
WEBHOOK_ATTEMPTS = Counter(
    "imgpipe_webhook_attempts_total", "Webhook attempts by outcome.", ["service", "outcome"]
)


def install_metrics(app: FastAPI, service: str) -> None:
    """Count and time every HTTP request by its route template, and serve /metrics."""

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(service, request.method, template, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, request.method, template).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(port: int, host: str | None = None) -> None:
    """For worker processes without an HTTP server; port 0 turns it off.

    Binds loopback unless METRICS_HOST says otherwise (containers set 0.0.0.0).
    """
    if port:
        start_http_server(port, addr=host or os.environ.get("METRICS_HOST", "127.0.0.1"))


def record_lag(service: str, positions: Iterable[tuple[str, int, int, int]]) -> None:
    """(topic, partition, position, high watermark) per assigned partition → lag gauges."""
    for topic, partition, position, high in positions:
        if position >= 0 and high >= 0:
            CONSUMER_LAG.labels(service, topic, str(partition)).set(max(0, high - position))
