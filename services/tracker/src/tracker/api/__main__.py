"""python -m tracker.api: serve the status API, with the runtime's slow-client read timeouts."""

from __future__ import annotations

from pipeline_runtime.logconfig import configure_logging
from pipeline_runtime.serving import serve

from ..config import Settings
from .app import create_app


def run(settings: Settings) -> None:
    serve(create_app(settings), host=settings.host, port=settings.port, settings=settings.http)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "tracker")
    run(settings)


if __name__ == "__main__":
    main()
