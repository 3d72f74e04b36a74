"""python -m tracker worker | api: the Faust worker or the status API (each also runs as
`python -m tracker.worker` / `python -m tracker.api`)."""

from __future__ import annotations

import argparse

from pipeline_runtime.logconfig import configure_logging

from .config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__)
    parser.add_argument("role", choices=["worker", "api"])
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log, "tracker")
    if args.role == "worker":
        from .worker.__main__ import run as run_worker

        run_worker(settings)
    else:
        from .api.__main__ import run as run_api

        run_api(settings)


if __name__ == "__main__":
    main()
