"""python -m notifier: run the webhook notifier (HTTP API, consumer and dispatcher in one process)."""

from __future__ import annotations

from pipeline_runtime.logconfig import configure_logging
from pipeline_runtime.serving import serve

from .app import create_app
from .config import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "notifier")
    serve(create_app(settings), host=settings.host, port=settings.port, settings=settings.http)


if __name__ == "__main__":
    main()
