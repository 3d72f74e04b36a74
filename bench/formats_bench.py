"""Output formats and quality modes over the 500-image mixed set, in process (issue 16).

Every image of bench/pipeline_bench.py's set (RGB and CMYK JPEGs of 0.6-12 MP, RGBA PNG
cut-outs) goes through the compressor's own `compress` once per setting, exactly as a member
would run it (decode, orient, encode, the never-larger rule). Per setting the table gives:
total bytes out against jpeg q50, the mean SSIM of the output against the decoded input (luma,
7x7 windows, over the same 4x4 grid of full-resolution 128-px tiles that quality=auto samples;
the whole picture below 1 MP), the CPU seconds per image against jpeg q50 (process CPU time of
`compress` alone; the scoring is not counted), and how many originals were kept as smaller.
Below it: the distribution of the score q50 reaches (what quality=auto's threshold is calibrated
on) and, per auto setting, on how many images auto was strictly smaller than q50 and how many
scored under the threshold.

No stack is needed. A pool of one process per core takes the images one at a time (CPU time is
per process, so the ratios hold on a busy machine); the wall time is printed. Settings:
BENCH_IMAGES (default 500), BENCH_REPORT_EVERY (print the table so far every N images, default 0:
only at the end).
"""

# No `from __future__ import annotations`: bench/run.py loads this file without registering it.

import importlib.util
import io
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "services" / "compressor" / "src"))

from compressor import auto_quality  # noqa: E402
from compressor.compression import CompressionOptions, compress  # noqa: E402
from compressor.encoders import prepared  # noqa: E402

SETTINGS = {
    "jpeg q50": CompressionOptions(50),
    "jpeg q50 optimize": CompressionOptions(50, optimize=True),
    "jpeg q50 progressive": CompressionOptions(50, progressive=True),
    "webp q50": CompressionOptions(50, format="webp"),
    "avif q50 (speed 8)": CompressionOptions(50, format="avif"),
    "jpeg quality=auto": CompressionOptions("auto"),
    "webp quality=auto": CompressionOptions("auto", format="webp"),
}
BASELINE = "jpeg q50"
FIELDS = ("images", "bytes_in", "bytes_out", "cpu", "score", "kept", "auto_quality")
REPORT_EVERY = int(os.environ.get("BENCH_REPORT_EVERY", "0"))


def _pipeline_bench():
    spec = importlib.util.spec_from_file_location("pipeline_bench_for_formats", HERE / "pipeline_bench.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def reference(data: bytes, output_format: str):
    """The input as the compressor sees it (upright, mode prepared), sampled as auto samples it."""
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        upright = ImageOps.exif_transpose(source)
        picture = prepared(upright, output_format)  # type: ignore[arg-type]
    boxes = auto_quality.tile_boxes(*picture.size)
    return boxes, auto_quality.luma(auto_quality.mosaic(picture, boxes))


def score(output: bytes, sampled) -> float:
    """SSIM of `output` against `sampled` (from `reference`)."""
    boxes, luma = sampled
    with Image.open(io.BytesIO(output)) as decoded:
        decoded.load()
        return auto_quality.ssim(luma, auto_quality.luma(auto_quality.mosaic(decoded, boxes)))


def measure(data: bytes) -> dict[str, dict[str, float]]:
    """One image through every setting: its bytes, CPU time, score, kept flag and quality."""
    references = {}
    rows = {}
    for name, options in SETTINGS.items():
        started = time.process_time()
        result = compress(data, options)
        cpu = time.process_time() - started
        if options.format not in references:
            references[options.format] = reference(data, options.format)
        rows[name] = {
            "images": 1,
            "bytes_in": len(data),
            "bytes_out": len(result.data),
            "cpu": cpu,
            "score": score(result.data, references[options.format]),
            "kept": result.kept_original,
            "auto_quality": result.quality or 0,
        }
    return rows


def _worker(tasks, results) -> None:
    """Take image paths until the None sentinel; the first image once more first, not counted
    (the first calls load codecs and numpy). Processes are forked: nothing here is pickled but
    paths and rows."""
    first = tasks.get()
    if first is not None:
        measure(Path(first).read_bytes())
    path = first
    while path is not None:
        results.put(measure(Path(path).read_bytes()))
        path = tasks.get()


class Totals:
    """Sums per setting, and the per-image figures the distributions need."""

    def __init__(self) -> None:
        self.sums = {name: dict.fromkeys(FIELDS, 0.0) for name in SETTINGS}
        self.per_image: list[dict[str, dict[str, float]]] = []

    def add(self, rows: dict[str, dict[str, float]]) -> None:
        self.per_image.append(rows)
        for name, row in rows.items():
            for field in FIELDS:
                self.sums[name][field] += row[field]

    def report(self) -> str:
        return f"{table(self.sums)}\n{self.distributions()}"

    def distributions(self) -> str:
        lines = []
        for name in ("jpeg q50", "webp q50"):
            scores = sorted(rows[name]["score"] for rows in self.per_image)
            lines.append(f"{name} score over {len(scores)} images: {_percentiles(scores)}")
        for name, options in SETTINGS.items():
            if options.quality != "auto":
                continue
            under = sum(r[name]["score"] < options.auto_threshold for r in self.per_image)
            qualities = sorted(r[name]["auto_quality"] for r in self.per_image if not r[name]["kept"])
            lines.append(
                f"{name}: score under {options.auto_threshold} on {under}/{len(self.per_image)}; "
                f"chosen quality {_percentiles(qualities, digits=0)}"
            )
            for base in dict.fromkeys([BASELINE, f"{options.format} q50"]):
                smaller = sum(r[name]["bytes_out"] < r[base]["bytes_out"] for r in self.per_image)
                equal = sum(r[name]["bytes_out"] == r[base]["bytes_out"] for r in self.per_image)
                lines.append(f"  strictly smaller than {base} on {smaller}, equal on {equal}")
        return "\n".join(lines)


def _percentiles(values: list[float], digits: int = 4) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=20, method="inclusive")  # 5 %, 10 %, ..., 95 %
    picked = {"min": values[0], "p5": cuts[0], "p10": cuts[1], "p25": cuts[4], "median": cuts[9]}
    picked |= {"p75": cuts[14], "p90": cuts[17], "max": values[-1]}
    return " ".join(f"{key} {value:.{digits}f}" for key, value in picked.items())


def table(totals: dict[str, dict[str, float]]) -> str:
    base = totals[BASELINE]
    lines = [
        f"{'setting':<22} {'bytes out':>12} {'vs q50':>7} {'mean SSIM':>9} {'CPU/img':>8} {'vs q50':>7} "
        f"{'kept':>5} {'mean q':>6}"
    ]
    for name, row in totals.items():
        n = max(row["images"], 1)
        auto = row["auto_quality"] / max(n - row["kept"], 1) if "auto" in name else float("nan")
        lines.append(
            f"{name:<22} {row['bytes_out'] / 1e6:>10.1f}MB {row['bytes_out'] / base['bytes_out']:>7.3f} "
            f"{row['score'] / n:>9.4f} {1000 * row['cpu'] / n:>6.0f}ms {row['cpu'] / base['cpu']:>7.2f} "
            f"{int(row['kept']):>5} {auto:>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    pipeline = _pipeline_bench()
    specs = pipeline.plan(pipeline.COUNT)
    pipeline.ensure_images(specs)
    print(pipeline.describe(specs), flush=True)
    cores = os.cpu_count() or 2
    paths = [str(pipeline.CACHE / spec.name) for spec in specs]
    print(f"{len(paths)} images x {len(SETTINGS)} settings on {cores} processes; load {_load()}", flush=True)
    started = time.monotonic()
    totals = Totals()
    ctx = multiprocessing.get_context("fork")
    tasks, results = ctx.Queue(), ctx.Queue()
    for path in [*paths, *[None] * cores]:
        tasks.put(path)
    workers = [ctx.Process(target=_worker, args=(tasks, results)) for _ in range(cores)]
    for worker in workers:
        worker.start()
    for done in range(1, len(paths) + 1):
        totals.add(results.get(timeout=3600))  # one image takes seconds; an hour means a hang
        if REPORT_EVERY and done % REPORT_EVERY == 0 and done < len(paths):
            print(f"--- {done} images, {time.monotonic() - started:.0f}s ---\n{totals.report()}", flush=True)
    for worker in workers:
        worker.join(timeout=60)
    print(totals.report(), flush=True)
    print(
        "bytes and CPU are totals over the set against jpeg q50; SSIM is the mean over images; "
        "kept: originals served as they were (smaller than the re-encode); mean q: chosen by auto",
        flush=True,
    )
    print(f"wall time {time.monotonic() - started:.0f}s on {cores} processes; load {_load()}", flush=True)


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
