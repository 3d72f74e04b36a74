"""`make cluster-chaos`: a 1,000-image request per fault on the cluster profile, as a table.

Not collected by pytest (too heavy for every run: about ten minutes on two cores). Faults, each
injected once a tenth of the request is processed: kill -9 the broker leading most of
image.requested's partitions; kill -9 the active quorum controller; one compressor host's link
down for 30 s; kill -9 every process of one compressor host; restart the object store. Each
row must show every image done once, one webhook id, nothing lost; `seconds` sits beside the
no-fault run's time. Exit status 1 if any row is not ok.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tests.support.servers import LocalServer

from . import harness

IMAGES = 1000
FAULT_AFTER = IMAGES // 10
COLUMNS = [
    "fault",
    "images expected",
    "images done",
    "duplicates counted",
    "redundant events ignored",
    "webhook ids delivered",
    "seconds",
    "vs no fault",
    "outcome",
]


def faults() -> list[tuple[str, harness.Fault]]:
    return [
        ("kill -9 busiest image.requested leader", harness.kill_broker(harness.busiest_leader)),
        ("kill -9 active quorum controller", harness.kill_broker(harness.active_controller)),
        ("compressor host 1 link down 30 s", harness.cut_host_link(1, 30.0)),
        ("kill -9 every process of host 2", harness.kill_host(2)),
        ("restart the object store", harness.restart_object_store()),
    ]


def table(rows: list[dict]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in COLUMNS]
    lines = [" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [
        " | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(COLUMNS, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines)


async def main(selected: list[str]) -> int:
    seconds = await asyncio.to_thread(harness.start_cluster)
    print(f"cluster up in {seconds:.0f}s", flush=True)
    origin = await harness.image_origin(IMAGES)
    subscriber = await LocalServer().start()
    rows: list[dict] = []
    try:
        baseline = await harness.run_request("no fault", IMAGES, origin, subscriber)
        baseline["vs no fault"] = "1.00x"
        rows.append(baseline)
        print(table(rows[-1:]), flush=True)
        for name, fault in faults():
            if selected and not any(s in name for s in selected):
                continue
            row = await harness.run_request(
                name, IMAGES, origin, subscriber, fault=fault, fault_after=FAULT_AFTER
            )
            row["vs no fault"] = f"{row['seconds'] / baseline['seconds']:.2f}x"
            rows.append(row)
            print(table(rows[-1:]), flush=True)
            if not await harness.wait_fully_replicated():
                print("warning: partitions still under-replicated before the next fault", flush=True)
    finally:
        await origin.stop()
        await subscriber.stop()
        if not os.environ.get("KEEP_CLUSTER"):
            await asyncio.to_thread(harness.stop_cluster)
    print("\ncluster chaos\n" + table(rows))
    return 0 if all(r["outcome"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
