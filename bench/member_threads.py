"""Where a compressor member's time goes, thread group by thread group, request by request (issue 14).

Not a `make bench` section (the name has no `_bench`): a measuring tool for the member's settings.

    IMGPIPE_TEST_SLOT=N .venv/bin/python bench/member_threads.py [--requests 3] [--warm-up 1000] \
        [--idle 0] [--env '{"COMPRESSOR_TRIM_AFTER_BYTES": "0"}'] [--keep]

It starts the `test` stack as the pipeline bench does, with `--env` added to every service's
environment, warms it up with `--warm-up` images of the bench's set, then uploads the set
`--requests` times, waiting `--idle` seconds before each upload. For each request it prints, per
image: the CPU of the pipeline's processes, and of the members' Pillow threads and their other
threads, each with its system CPU, minor page faults and context switches, read from
/proc/<pid>/task/*/{stat,status}. Page faults and context switches are counts, steadier from run
to run than CPU time on a shared machine. The stack is stopped at the end unless `--keep`.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Threads:
    """Counters summed over a group of threads: CPU and system CPU seconds, minor faults, switches."""

    cpu: float = 0.0
    system: float = 0.0
    faults: int = 0
    switches: int = 0

    def __sub__(self, other: "Threads") -> "Threads":
        return Threads(
            self.cpu - other.cpu,
            self.system - other.system,
            self.faults - other.faults,
            self.switches - other.switches,
        )

    def __add__(self, other: "Threads") -> "Threads":
        return Threads(
            self.cpu + other.cpu,
            self.system + other.system,
            self.faults + other.faults,
            self.switches + other.switches,
        )


def _switches(status: str) -> int:
    """Voluntary and involuntary context switches, from a /proc status file."""
    return sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)


def member_threads(pids: list[int]) -> dict[str, Threads]:
    """The members' threads as counted so far, by name (digits dropped: rdk:broker1 -> rdk:broker)."""
    from bench.pipeline_bench import TICK, _stat_fields

    named: dict[str, Threads] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                comm = (task / "comm").read_text().strip()
                fields = _stat_fields(task / "stat")
                status = (task / "status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            name = comm.rstrip("0123456789_-")
            counted = Threads(
                (int(fields[11]) + int(fields[12])) / TICK,
                int(fields[12]) / TICK,
                int(fields[7]),
                _switches(status),
            )
            named[name] = named.get(name, Threads()) + counted
    return named


def is_pillow(name: str) -> bool:
    """Whether a group of `member_threads` holds the members' Pillow threads."""
    from bench.pipeline_bench import PILLOW_THREAD

    return name.startswith(PILLOW_THREAD.rstrip("_"))


def split(named: dict[str, Threads]) -> tuple[Threads, Threads]:
    """(the Pillow threads, every other thread) summed."""
    pillow, other = Threads(), Threads()
    for name, threads in named.items():
        if is_pillow(name):
            pillow += threads
        else:
            other += threads
    return pillow, other


def difference(after: dict[str, Threads], before: dict[str, Threads]) -> dict[str, Threads]:
    return {name: threads - before.get(name, Threads()) for name, threads in after.items()}


def _line(name: str, threads: Threads, images: int) -> str:
    return (
        f"{name} {1000 * threads.cpu / images:5.1f} ms (system {1000 * threads.system / images:4.2f}), "
        f"{threads.faults / images:4.0f} faults, {threads.switches / images:4.1f} switches"
    )


def measure(args: argparse.Namespace) -> None:
    from bench import pipeline_bench as bench

    specs = bench.plan(bench.COUNT)
    bench.ensure_images(specs)
    profile = bench.start_stack(json.loads(args.env))
    with bench.image_server() as base:
        for start in range(0, args.warm_up, len(specs)):
            warm = specs[: min(len(specs), args.warm_up - start)]
            asyncio.run(bench.upload_and_wait(profile, bench.product_csv(base, warm)))
        members = [
            pid for name, pid in bench.stack_roots(profile).items() if name.startswith("own:compressor")
        ]
        for number in range(1, args.requests + 1):
            time.sleep(args.idle)
            before = member_threads(members)
            run = bench.measure_request(profile, base, specs)
            named = difference(member_threads(members), before)
            pillow, other = split(named)
            images = run.status["processed_images"] or 1
            print(
                f"request {number}: {images} images in {run.seconds:.1f} s, the pipeline's processes "
                f"{1000 * bench.stack_cpu(run) / images:.1f} ms per image, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            print(f"  {_line('Pillow threads:', pillow, images)}", flush=True)
            print(f"  {_line('other threads: ', other, images)}", flush=True)
            for name, threads in sorted(named.items(), key=lambda kv: -kv[1].cpu):
                if threads.cpu > 0.00005 * images and not is_pillow(name):
                    label = f"{name}:"
                    print(f"    {_line(f'{label:<15}', threads, images)}", flush=True)
            parts = ", ".join(f"{k} {1000 * v / images:.2f}" for k, v in sorted(run.cpu.items()))
            print(f"  by component, ms per image: {parts}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=1000, help="images processed before measuring")
    parser.add_argument("--idle", type=float, default=0.0, help="seconds to wait before each upload")
    parser.add_argument("--env", default="{}", help="JSON of settings added to every service's environment")
    sys.path.insert(0, str(REPO))
    from bench.pipeline_bench import run_measuring_tool

    run_measuring_tool(parser, measure)


if __name__ == "__main__":
    main()
