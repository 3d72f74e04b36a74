"""python -m notifier: run the webhook notifier."""

from __future__ import annotations

import uvicorn
from pipeline_runtime.logconfig import configure_logging

from .app import create_app
from .config import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "notifier")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
