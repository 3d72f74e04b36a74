"""Waiting for a request to finish: bounded status polling with a live progress view on stderr.

On a terminal the view is a rich progress bar; otherwise (a pipe, a CI log, a test) it prints one plain
line whenever the counts change, so progress stays visible without control codes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from .api import PipelineApi
from .outcome import ApiError, CliError, ServiceUnreachable, is_finished

MAX_FAILED_POLLS_IN_A_ROW = 10


@dataclass(frozen=True)
class WaitPolicy:
    timeout: float
    interval: float
    max_failed_polls_in_a_row: int = MAX_FAILED_POLLS_IN_A_ROW

    @property
    def max_polls(self) -> int:
        return math.ceil(self.timeout / self.interval) + 2


@dataclass(frozen=True)
class Snapshot:
    """One status reading: the rate measured since watching began, and the ETA.

    The ETA is the server's `eta_seconds` when it gives one (it measures the request's own recent
    rate, which is its fair share of the compressors); otherwise the estimate from this watch.
    """

    status: str
    total: int
    done: int
    failed: int
    rate: float | None
    eta: float | None
    queued: int = 0  # waiting for the fair scheduler to admit them
    cancelled: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def in_progress(self) -> int:
        """Admitted images not finished yet."""
        return max(self.total - self.finished - self.queued - self.cancelled, 0)

    def describe_rate(self) -> str:
        return "— img/s" if self.rate is None else f"{self.rate:.1f} img/s"

    def describe_eta(self) -> str:
        return "—" if self.eta is None else str(timedelta(seconds=round(self.eta)))


class WaitTimedOut(CliError):
    def __init__(self, timeout: float, last_status: dict[str, Any]):
        super().__init__("Timed out", f"the request had not finished after {timeout:g} s")
        self.last_status = last_status


class ProgressView(Protocol):
    def __enter__(self) -> ProgressView: ...
    def __exit__(self, *_: object) -> None: ...
    def show(self, snapshot: Snapshot) -> None: ...
    def warn(self, message: str) -> None: ...


class Throughput:
    """Images finished per second since the first reading, and the time left at that rate."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.first: tuple[float, int] | None = None

    def measure(self, finished: int, total: int) -> tuple[float | None, float | None]:
        now = self.clock()
        if self.first is None:
            self.first = (now, finished)
        return rate_and_eta(self.first[1], finished, now - self.first[0], total)


def rate_and_eta(
    finished_then: int, finished_now: int, seconds: float, total: int
) -> tuple[float | None, float | None]:
    gained = finished_now - finished_then
    if seconds <= 0 or gained <= 0:
        return None, None
    rate = gained / seconds
    return rate, max(total - finished_now, 0) / rate


async def wait_for_finish(
    api: PipelineApi,
    request_id: str,
    policy: WaitPolicy,
    view: ProgressView,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the status until the request finishes; raises WaitTimedOut after policy.timeout seconds."""
    deadline = clock() + policy.timeout
    throughput = Throughput(clock)
    failed_in_a_row = 0
    last: dict[str, Any] = {}
    for _ in range(policy.max_polls):
        try:
            last = await api.status(request_id)
            failed_in_a_row = 0
        except CliError as error:
            failed_in_a_row += 1
            if not is_worth_polling_again(error) or failed_in_a_row > policy.max_failed_polls_in_a_row:
                raise
            view.warn(f"status not available ({error}); trying again")
        else:
            view.show(snapshot_of(last, throughput))
            if is_finished(last):
                return last
        if clock() + policy.interval > deadline:
            break
        await asyncio.sleep(policy.interval)
    raise WaitTimedOut(policy.timeout, last)


def is_worth_polling_again(error: CliError) -> bool:
    """Reading a status is safe to repeat: connection errors and server errors may pass (a restart)."""
    return isinstance(error, ServiceUnreachable) or (isinstance(error, ApiError) and error.status >= 500)


def snapshot_of(status: dict[str, Any], throughput: Throughput) -> Snapshot:
    total = int(status.get("total_images") or 0)
    done = int(status.get("processed_images") or 0)
    failed = int(status.get("failed_images") or 0)
    cancelled = int(status.get("cancelled_images") or 0)
    rate, local_eta = throughput.measure(done + failed, total)
    server_eta = status.get("eta_seconds")
    eta = float(server_eta) if isinstance(server_eta, int | float) else local_eta
    queued = int(status.get("queued_images") or 0)
    return Snapshot(str(status.get("status")), total, done, failed, rate, eta, queued, cancelled)


class LiveProgressBar:
    """A rich progress bar: done, failed, rate and ETA, redrawn in place on a terminal."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[done]} done"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[queued]} queued"),
            TextColumn("{task.fields[in_progress]} in progress"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
        )
        self.task = self.progress.add_task(
            "waiting", total=None, done=0, failed=0, queued=0, in_progress=0, rate="", eta="—"
        )

    def __enter__(self) -> LiveProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def show(self, snapshot: Snapshot) -> None:
        self.progress.update(
            self.task,
            description=snapshot.status,
            total=snapshot.total,
            completed=snapshot.finished,
            done=snapshot.done,
            failed=snapshot.failed,
            queued=snapshot.queued,
            in_progress=snapshot.in_progress,
            rate=snapshot.describe_rate(),
            eta=snapshot.describe_eta(),
        )

    def warn(self, message: str) -> None:
        self.progress.console.print(Text(message, style="yellow"))


class ProgressLines:
    """One line per change of the counts, for logs and pipes where a redrawn bar would be noise."""

    def __init__(self, console: Console):
        self.console = console
        self.last_counts: tuple[str, int, int, int] | None = None

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def show(self, snapshot: Snapshot) -> None:
        counts = (snapshot.status, snapshot.done, snapshot.failed, snapshot.queued)
        if counts == self.last_counts:
            return
        self.last_counts = counts
        self.console.print(Text(describe_progress(snapshot)), soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(Text(message), soft_wrap=True)


def describe_progress(snapshot: Snapshot) -> str:
    share = snapshot.finished / snapshot.total if snapshot.total else 1.0
    return (
        f"progress: {snapshot.status} {snapshot.finished}/{snapshot.total} ({share * 100:.0f}%), "
        f"{snapshot.done} done, {snapshot.failed} failed, {snapshot.queued} queued, "
        f"{snapshot.in_progress} in progress, {snapshot.describe_rate()}, "
        f"ETA {snapshot.describe_eta()}"
    )


def progress_view_for(console: Console) -> ProgressView:
    return LiveProgressBar(console) if console.is_terminal else ProgressLines(console)
