"""python -m compressor: run one member of the compressor consumer group."""

from __future__ import annotations

import asyncio

from pipeline_runtime.logconfig import configure_logging

from .app import run
from .config import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log, "compressor")
    try:
        settings.media_secret()  # no member runs without one: refuse before anything is opened
    except ValueError as exc:
        raise SystemExit(f"compressor: {exc}") from None
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
