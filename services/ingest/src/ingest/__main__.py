"""python -m ingest: run the ingest HTTP service; `keys ...` manages API keys, `weights ...` tenant weights."""

from __future__ import annotations

import sys

from pipeline_runtime.logconfig import configure_logging

from .config import Settings


def serve() -> None:
    from pipeline_runtime.serving import serve as serve_http

    from .app import create_app

    settings = Settings()
    configure_logging(settings.log, "ingest")
    serve_http(create_app(settings), host=settings.host, port=settings.port, settings=settings.http)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["keys"]:
        from .keys import main as keys_main

        raise SystemExit(keys_main(args[1:]))
    if args[:1] == ["weights"]:
        from .weights import main as weights_main

        raise SystemExit(weights_main(args[1:]))
    serve()


if __name__ == "__main__":
    main()
