"""Output formats and quality modes over the 500-image mixed set, in process (issue 16).

Every image of bench/pipeline_bench.py's set (RGB and CMYK JPEGs of 0.6-12 MP, RGBA PNG
cut-outs) goes through the compressor's own `compress` once per setting, exactly as a member
would run it (decode, orient, encode, the never-larger rule). Per setting the table gives:
total bytes out against jpeg q50, the mean SSIM of the output against the decoded input (luma,
7x7 windows, over the same 4x4 grid of full-resolution 128-px tiles that quality=auto samples;
the whole picture below 1 MP), the CPU seconds per image against jpeg q50 (process CPU time of
`compress` alone; the scoring is not counted), and how many originals were kept as smaller.

No stack is needed. Images are shared among as many processes as there are cores; CPU time is
per process, so the ratios hold on a busy machine. Settings: BENCH_IMAGES (default 500),
BENCH_REPORT_EVERY (print the table so far every N images per process, default 0: only at the end).
"""

# No `from __future__ import annotations`: bench/run.py loads this file without registering it.

import importlib.util
import io
import multiprocessing
import os
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


def measure(data: bytes, totals: dict[str, dict[str, float]]) -> None:
    references = {}
    for name, options in SETTINGS.items():
        started = time.process_time()
        result = compress(data, options)
        cpu = time.process_time() - started
        row = totals[name]
        row["images"] += 1
        row["bytes_in"] += len(data)
        row["bytes_out"] += len(result.data)
        row["cpu"] += cpu
        if options.format not in references:
            references[options.format] = reference(data, options.format)
        row["score"] += score(result.data, references[options.format])
        row["kept"] += result.kept_original
        row["auto_quality"] += result.quality or 0


def _worker(paths: list[str], results) -> None:
    warm_up = {name: dict.fromkeys(FIELDS, 0.0) for name in SETTINGS}
    measure(Path(paths[0]).read_bytes(), warm_up)  # first calls load codecs and numpy: not counted
    totals = {name: dict.fromkeys(FIELDS, 0.0) for name in SETTINGS}
    for done, path in enumerate(paths, 1):
        measure(Path(path).read_bytes(), totals)
        if REPORT_EVERY and done % REPORT_EVERY == 0:
            print(f"--- pid {os.getpid()}: {done} images ---\n{table(totals)}", flush=True)
    results.put(totals)


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


def merged(parts: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {name: {f: sum(p[name][f] for p in parts) for f in FIELDS} for name in SETTINGS}


def main() -> None:
    pipeline = _pipeline_bench()
    specs = pipeline.plan(pipeline.COUNT)
    pipeline.ensure_images(specs)
    print(pipeline.describe(specs), flush=True)
    cores = os.cpu_count() or 2
    paths = [str(pipeline.CACHE / spec.name) for spec in specs]
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(paths[k::cores], results)) for k in range(cores)]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=6 * 3600) for _ in workers]
    for worker in workers:
        worker.join()
    print(table(merged(parts)), flush=True)
    print(
        "bytes and CPU are totals over the set against jpeg q50; SSIM is the mean over images; "
        "kept: originals served as they were (smaller than the re-encode); mean q: chosen by auto",
        flush=True,
    )


if __name__ == "__main__":
    main()
