"""`python scripts/gen_docs.py [--check]` (or `python -m gendocs` with scripts/ on the path)."""

from __future__ import annotations

import argparse
import sys

from . import __doc__ as PACKAGE_DOC
from .assemble import render_all, stale, write
from .common import GenerationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=PACKAGE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    try:
        files = render_all()
    except GenerationError as exc:
        print(f"gen_docs: {exc}", file=sys.stderr)
        return 1
    if args.check:
        out_of_date = stale(files)
        if out_of_date:
            print("stale generated docs (run `make docs`): " + ", ".join(out_of_date), file=sys.stderr)
            return 1
        return 0
    for line in write(files):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
