"""python -m tracker.api: serve the status API, with the runtime's slow-client read timeouts."""

from __future__ import annotations

from pipeline_runtime.serving import serve

from ..config import Settings
from .app import create_app


def run(settings: Settings) -> None:
    serve(create_app(settings), host=settings.host, port=settings.port, settings=settings.http)


if __name__ == "__main__":
    from ..__main__ import main

    main(["api"])
