"""python -m tracker worker | api: the Faust worker or the status API."""

from __future__ import annotations

import argparse

from pipeline_runtime.logconfig import configure_logging

from .config import Settings


def wait_for_broker(bootstrap_servers: str) -> None:
    """Faust exits if Kafka is unreachable while it starts; wait for a broker first instead."""
    import time

    import structlog
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
        delay = min(delay * 2, 10.0)


def run_worker(settings: Settings) -> None:
    import faust
    from pipeline_runtime.metrics import serve_metrics

    from .app import create_faust_app

    serve_metrics(settings.metrics_port)
    wait_for_broker(settings.kafka.bootstrap_servers)
    app = create_faust_app(settings)
    worker = faust.Worker(app, loglevel=settings.log.level.lower(), redirect_stdouts=False)
    configure_logging(settings.log, "tracker")
    worker.execute_from_commandline()


def run_api(settings: Settings) -> None:
    import uvicorn

    from .api import create_api

    uvicorn.run(
        create_api(settings), host=settings.host, port=settings.port, log_config=None, access_log=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__)
    parser.add_argument("role", choices=["worker", "api"])
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log, "tracker")
    (run_worker if args.role == "worker" else run_api)(settings)


if __name__ == "__main__":
    main()
