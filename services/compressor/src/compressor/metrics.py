"""What only the compressor counts: images done and failed, bytes in and out, time per stage."""

from __future__ import annotations

from pipeline_runtime.metrics import LATENCY_BUCKETS, Counter, Histogram

IMAGES_PROCESSED = Counter("imgpipe_images_processed_total", "Images compressed and stored.", ["service"])
IMAGES_FAILED = Counter(
    "imgpipe_images_failed_total", "Images that failed, by reason code.", ["service", "reason"]
)
BYTES_IN = Counter("imgpipe_image_bytes_in_total", "Bytes of source images downloaded.", ["service"])
BYTES_OUT = Counter("imgpipe_image_bytes_out_total", "Bytes of compressed images stored.", ["service"])
STAGE_LATENCY = Histogram(
    "imgpipe_stage_duration_seconds",
    "Time spent per stage (download, compress, store, end_to_end).",
    ["service", "stage"],
    buckets=LATENCY_BUCKETS,
)
