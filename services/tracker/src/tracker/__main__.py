"""python -m tracker worker | api: the Faust worker or the status API."""

from __future__ import annotations

import argparse

from pipeline_runtime.logconfig import configure_logging

from .config import Settings


def run_worker(settings: Settings) -> None:
    import faust
    from pipeline_runtime.metrics import serve_metrics

    from .app import create_faust_app

    serve_metrics(settings.metrics_port)
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
