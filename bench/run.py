"""`make bench`: run every bench/*_bench.py (each has main() -> None and prints its figures).

Benchmarks start what they need through devstack (the `test` profile, or the servers named by
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL). Run one alone with `python bench/run.py NAME`.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from devstack import postgres, procs
    from devstack.__main__ import down
    from devstack.ports import PortsTaken
    from devstack.profiles import PROFILES

    profile = PROFILES["test"]
    # Leave nothing running (issue 14): the stack the benchmarks start is stopped at the end,
    # unless it was already up before (someone else's, left as found).
    was_up = bool(procs.running(profile.run_dir)) or postgres.is_running(profile)
    try:
        run_sections(set(sys.argv[1:]))
    except PortsTaken as exc:  # one line naming the holder, not a traceback
        sys.exit(f"bench: {exc}")
    finally:
        if not was_up:
            down(profile)


def run_sections(wanted: set[str]) -> None:
    for path in sorted(HERE.glob("*_bench.py")):
        name = path.stem.removesuffix("_bench")
        if wanted and name not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        print(f"=== {name} ===", flush=True)
        started = time.monotonic()
        module.main()
        print(f"=== {name}: {time.monotonic() - started:.1f}s ===\n", flush=True)


if __name__ == "__main__":
    main()
