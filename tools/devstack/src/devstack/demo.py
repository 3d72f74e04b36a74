"""The sample job of `make up`: product images served locally, uploaded as a CSV, followed to the end."""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.request
import uuid
from typing import Any

from PIL import Image, ImageDraw

from . import ports, procs
from .profiles import BRIDGE_ADDRESS, REPO_ROOT, Profile

SAMPLE_PRODUCTS = [
    ("Red Running Shoe", [(1600, 1200, "#c0392b"), (1200, 1200, "#e74c3c")]),
    ("Blue Denim Jacket", [(1024, 1365, "#2c3e50"), (800, 800, "#3498db"), (2000, 1500, "#1f4e79")]),
    ("Green Ceramic Mug", [(1000, 1000, "#27ae60")]),
    ("Yellow Raincoat", [(1500, 2000, "#f1c40f"), (1280, 960, "#f39c12")]),
]


def product_image(width: int, height: int, colour: str, seed: int) -> bytes:
    """A photo-like picture: a gradient backdrop with noise and a product-coloured shape."""
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    backdrop = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    img = Image.blend(backdrop, noise, 0.35)
    ImageDraw.Draw(img).ellipse(
        (width // 5 + seed * 7, height // 5, width * 4 // 5, height * 4 // 5), fill=colour
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def origin_host(profile: Profile) -> str:
    """The image origin listens where the compressors are: on the bridge for the cluster."""
    return BRIDGE_ADDRESS if profile.bridged else "127.0.0.1"


def write_samples(profile: Profile) -> str:
    """Write the sample images and CSV; returns the CSV text."""
    folder = profile.run_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    base = f"http://{origin_host(profile)}:{profile.samples_port}"
    lines = ["S. No.,Product Name,Input Image Urls"]
    for serial, (name, shots) in enumerate(SAMPLE_PRODUCTS, start=1):
        urls = []
        for n, (w, h, colour) in enumerate(shots):
            file = f"p{serial}-{n}.jpg"
            if not (folder / file).exists():
                (folder / file).write_bytes(product_image(w, h, colour, n))
            urls.append(f"{base}/{file}")
        lines.append(f'{serial},{name},"{",".join(urls)}"')
    return "\n".join(lines) + "\n"


def ports_of(profile: Profile) -> dict[str, dict[str, int]]:
    return {"sample-images": {"sample-images": profile.samples_port}}


def serve_samples(profile: Profile) -> None:
    if procs.read_pid(profile.run_dir, "sample-images") is None:
        ports.require_free(ports_of(profile)["sample-images"])
    argv = [
        sys.executable,
        "-m",
        "http.server",
        str(profile.samples_port),
        "--bind",
        origin_host(profile),
        "--directory",
        str(profile.run_dir / "samples"),
    ]
    procs.start(profile.run_dir, "sample-images", argv, {}, REPO_ROOT)


def multipart(fields: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for field, (filename, data, ctype) in fields.items():
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        )
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def auth(profile: Profile) -> dict[str, str]:
    """The stack's bootstrap key: ingest and the tracker API refuse calls without a key."""
    return {"Authorization": f"Bearer {profile.api_key()}"}


def upload(profile: Profile, csv_text: str) -> dict[str, Any]:
    body, ctype = multipart({"file": ("sample.csv", csv_text.encode(), "text/csv")})
    req = urllib.request.Request(  # noqa: S310 - loopback only
        f"http://127.0.0.1:{profile.ingest_port}/upload",
        data=body,
        method="POST",
        headers={"Content-Type": ctype, **auth(profile)},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        answer: dict[str, Any] = json.load(resp)
        return answer


def wait_finished(profile: Profile, status_url: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        req = urllib.request.Request(status_url, headers=auth(profile))  # noqa: S310 - loopback only
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            status: dict[str, Any] = json.load(resp)
        if status["completed_at"] or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def run(profile: Profile) -> None:
    csv_text = write_samples(profile)
    serve_samples(profile)
    accepted = upload(profile, csv_text)
    print(f"uploaded sample: request {accepted['request_id']} ({accepted['total_images']} images)")
    status = wait_finished(profile, accepted["status_url"])
    print(json.dumps(status, indent=2))
    print(f"status:     {accepted['status_url']}")
    print(f"output CSV: {accepted['output_csv_url']}")
    print(
        f'API key:    export IMGPIPE_API_KEY="$(cat {profile.run_dir / "api-key"})"  (every scope, tenant default)'
    )
    if status["status"] != "completed":
        raise RuntimeError(f"sample request ended {status['status']}")
