"""Issue 12's hostile use on the whole running stack, printed as a table: case, expected, observed, ok
(and the seconds each case took).

Every registered case (cases.CASES: pipeline_cases, then upload_cases) runs in order; then every service must still be ready, every worker
process alive, and every process's resident memory within its bound (probes.RSS_BOUNDS_MIB), both
at its peak while the cases ran and at the end.
Run alone with `pytest tests/security -s` to see the table.
"""

from __future__ import annotations

import time

import pytest

from tests.security import pipeline_cases, upload_cases
from tests.security.cases import CASES, Outcome
from tests.security.probes import MIB, RSS_BOUNDS_MIB, PeakMemory, ready, service_of, service_rss
from tests.security.stage import HELD_SECONDS, Stage, endless, redirect, silent
from tests.support.images import photo_jpeg
from tests.support.report import table_lines
from tests.support.servers import held, serving

pytestmark = pytest.mark.e2e

COLUMNS = ["case", "expected", "observed", "ok", "s"]
SUITES = (pipeline_cases, upload_cases)  # imported for their @case registrations, in this order
WORKERS = ("compressor-1", "compressor-2", "tracker-worker-1", "tracker-worker-2")


@pytest.fixture
async def stage(pipeline, ingest_url, tracker_url, notifier_url, auth_headers):
    picture = photo_jpeg(64, 48, seed=12)
    async with serving({"a.jpg": picture, "creds.jpg": picture}) as host:
        made = Stage(
            ingest_url,
            tracker_url,
            notifier_url,
            pipeline.database_url,
            pipeline.run_dir,
            auth_headers,
            host,
            pipeline.webhook_secret(),
        )
        host.routes.update(
            {
                "held.jpg": held(picture, host.release, at_most=HELD_SECONDS),
                "endless": endless(made),
                "silent": silent(),
                "to-credentials": redirect(f"http://user:pw@127.0.0.1:{host.port}/creds.jpg"),
                "to-long-label": redirect(f"http://{'a' * 64}.test/x.jpg"),
            }
        )
        yield made


async def run_case(stage: Stage, run) -> Outcome:
    try:
        return await run(stage)
    except Exception as exc:  # a case that breaks is a row not ok, and the others still run
        return Outcome(f"{type(exc).__name__}: {exc}"[:200], False)


async def afterwards(stage: Stage, peak: dict[str, int]) -> list[dict]:
    """The rows about the stack itself once every case has run: readiness, processes, memory."""
    readiness = await ready(
        {
            "ingest": f"{stage.ingest}/readyz",
            "tracker-api": f"{stage.tracker}/readyz",
            "notifier": f"{stage.notifier}/readyz",
        }
    )
    rss = service_rss(stage.run_dir)
    alive = {name: rss.get(name) is not None for name in WORKERS}
    rows = [
        {
            "case": "afterwards: every service ready",
            "expected": "/readyz 200 x3; workers alive",
            "observed": ", ".join(f"{n} {s}" for n, s in readiness.items())
            + "; "
            + ", ".join(f"{n} {'alive' if a else 'GONE'}" for n, a in alive.items()),
            "ok": set(readiness.values()) == {200} and all(alive.values()),
        }
    ]
    for name, used in sorted(rss.items()):
        top = max(peak.get(name, 0), used or 0)
        bound = RSS_BOUNDS_MIB[service_of(name)]
        rows.append(
            {
                "case": f"afterwards: memory of {name}",
                "expected": f"VmRSS < {bound} MiB (peak and end)",
                "observed": "gone" if used is None else f"peak {top / MIB:.0f} MiB, end {used / MIB:.0f} MiB",
                "ok": used is not None and top < bound * MIB,
            }
        )
    return rows


async def test_hostile_use_leaves_every_service_up_and_bounded(stage):
    rows = []
    async with PeakMemory(stage.run_dir) as memory:
        for case in CASES:
            started = time.monotonic()
            outcome = await run_case(stage, case.run)
            rows.append(
                {
                    "case": case.name,
                    "expected": case.expected,
                    "observed": outcome.observed,
                    "ok": outcome.ok,
                    "s": f"{time.monotonic() - started:.1f}",
                }
            )
    rows += await afterwards(stage, memory.peak)

    print("\nhostile use (issue 12)\n" + "\n".join(table_lines(COLUMNS, rows)))
    failed = [row for row in rows if not row["ok"]]
    assert not failed, "\n".join(
        f"{r['case']}: expected {r['expected']}, observed {r['observed']}" for r in failed
    )
