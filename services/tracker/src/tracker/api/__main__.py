"""python -m tracker.api: serve the status API with uvicorn."""

from __future__ import annotations

import uvicorn
from pipeline_runtime.logconfig import configure_logging

from ..config import Settings
from .app import create_app


def run(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False
    )


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "tracker")
    run(settings)


if __name__ == "__main__":
    main()
