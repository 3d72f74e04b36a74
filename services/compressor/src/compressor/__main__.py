"""python -m compressor: run one member of the compressor consumer group."""

from __future__ import annotations

import asyncio

from pipeline_runtime.logconfig import configure_logging

from .config import Settings
from .worker import run


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "compressor")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
