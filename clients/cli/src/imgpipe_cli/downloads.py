"""Saving a request's output images with a bounded number of downloads in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

from .api import PipelineApi
from .outcome import ApiError, CliError, ServiceUnreachable

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif"})
DOWNLOAD_ATTEMPTS = 2


@dataclass(frozen=True)
class ImageFile:
    url: str
    path: Path


@dataclass
class DownloadReport:
    saved: int = 0
    skipped: int = 0
    bytes: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"saved": self.saved, "skipped": self.skipped, "bytes": self.bytes, "failures": self.failures}


def image_files(images: list[dict[str, Any]], directory: Path) -> tuple[list[ImageFile], int]:
    """The files to fetch, named `<serial>-<position><suffix>`, and how many images have no output."""
    files = [
        ImageFile(image["output_url"], directory / file_name_for(image))
        for image in images
        if image.get("output_url")
    ]
    return files, len(images) - len(files)


def file_name_for(image: dict[str, Any]) -> str:
    """Built from two integers and a known suffix, so a name can never leave the directory."""
    suffix = PurePosixPath(httpx.URL(image["output_url"]).path).suffix.lower()
    return f"{int(image['serial_number'])}-{int(image['position'])}{suffix if suffix in IMAGE_SUFFIXES else '.jpg'}"


async def save_images(
    api: PipelineApi, files: list[ImageFile], concurrency: int, on_each: Callable[[], None]
) -> DownloadReport:
    """Fetch every file with at most `concurrency` downloads at once; failures are reported, not raised."""
    report = DownloadReport()
    pending = deque(files)

    async def worker() -> None:
        while pending:
            file = pending.popleft()
            try:
                written = await save_with_retry(api, file)  # awaited first: `+= await` would lose updates
                report.bytes += written
                report.saved += 1
            except CliError as error:
                report.failures.append({"url": file.url, "file": str(file.path), "error": str(error)})
            on_each()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(files)))))
    return report


async def save_with_retry(api: PipelineApi, file: ImageFile) -> int:
    for _ in range(DOWNLOAD_ATTEMPTS - 1):
        try:
            return await api.save(file.url, file.path)
        except (ServiceUnreachable, ApiError) as error:
            if isinstance(error, ApiError) and error.status < 500:
                raise
    return await api.save(file.url, file.path)


class DownloadProgress:
    """A progress bar for downloads on a terminal; elsewhere nothing until the final report."""

    def __init__(self, console: Console, total: int):
        self.progress = Progress(
            TextColumn("downloading"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("images", total=total)

    def __enter__(self) -> DownloadProgress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def advance(self) -> None:
        self.progress.advance(self.task)
