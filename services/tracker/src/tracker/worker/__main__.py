"""python -m tracker.worker [faust options]: run the Faust worker once a Kafka broker answers."""

from __future__ import annotations

import time

import structlog
from pipeline_runtime.logconfig import configure_logging
from pipeline_runtime.metrics import serve_metrics

from ..config import Settings

BROKER_WAIT_MAX_DELAY = 10.0


def wait_for_broker(bootstrap_servers: str) -> None:
    """Faust exits if Kafka is unreachable while it starts; wait for a broker first instead."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    delay = 0.5
    while True:
        try:
            if admin.list_topics(timeout=3).brokers:
                return
        except Exception as exc:  # noqa: BLE001 - any failure means: not yet
            structlog.get_logger(__name__).warning("kafka.unreachable", error=str(exc), retry_in=delay)
        time.sleep(delay)
        delay = min(delay * 2, BROKER_WAIT_MAX_DELAY)


def run(settings: Settings) -> None:
    import faust

    from .app import create_faust_app

    serve_metrics(settings.metrics_port)
    wait_for_broker(settings.kafka.bootstrap_servers)
    app = create_faust_app(settings)
    worker = faust.Worker(app, loglevel=settings.log.level.lower(), redirect_stdouts=False)
    configure_logging(settings.log, "tracker")  # again: Faust's worker replaced the handlers
    worker.execute_from_commandline()


if __name__ == "__main__":
    from ..__main__ import main

    main(["worker"])
