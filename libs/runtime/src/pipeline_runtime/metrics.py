"""Prometheus metrics every service shares: HTTP traffic, Kafka consumer lag, outbox backlog, helpers.

Metric names are the contract of deploy/prometheus and the Grafana dashboard. What only one service
counts lives in that service (`compressor/metrics.py`, ...), listed in METRIC_MODULES so that the
docs generator and the observability test see every metric. HTTP services serve /metrics
themselves; worker processes without an HTTP server call `serve_metrics(port)`.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = ["Counter", "Gauge", "Histogram"]  # re-exported: services declare theirs with these

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Where metrics are declared, this module first; a module whose package is absent is skipped.
METRIC_MODULES = (
    "pipeline_runtime.metrics",
    "compressor.metrics",
    "ingest.metrics",
    "tracker.worker.metrics",
    "notifier.metrics",
)
# Label values a caller cannot invent: any other method token is counted as OTHER_METHOD, any
# path no route matched as UNMATCHED_ROUTE, so hostile requests add no new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered.", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "imgpipe_consumer_lag_messages",
    "Messages behind the end of each assigned partition.",
    ["service", "topic", "partition"],
)
OUTBOX_BACKLOG = Gauge("imgpipe_outbox_backlog_rows", "Outbox rows not yet published to Kafka.", ["service"])


def install_metrics(app: FastAPI, service: str) -> None:
    """Count and time every HTTP request by its route template, and serve /metrics."""

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        method, route = http_labels(request)
        HTTP_REQUESTS.labels(service, method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def http_labels(request: Request) -> tuple[str, str]:
    """(method, route template) labels of a request, from a fixed set whatever the caller sent."""
    method = request.method if request.method in KNOWN_METHODS else OTHER_METHOD
    route = getattr(request.scope.get("route"), "path", None)
    return method, route if isinstance(route, str) else UNMATCHED_ROUTE


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


def declared_metrics(modules: Iterable[str] = METRIC_MODULES) -> list[tuple[str, str, list[str], str]]:
    """(exposed name, type, labels, help) of every metric the modules declare, sorted by name."""
    found: dict[str, tuple[str, str, list[str], str]] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            metric, kind = getattr(value, "_name", None), getattr(value, "_type", None)
            if not isinstance(metric, str) or kind not in ("counter", "gauge", "histogram", "summary"):
                continue
            exposed = metric + "_total" if kind == "counter" else metric
            labels = list(getattr(value, "_labelnames", ()))
            found[exposed] = (exposed, kind, labels, getattr(value, "_documentation", ""))
    return sorted(found.values())
