"""The admission loop: one scheduler across ingest instances admits queued images fairly.

Every instance runs this loop; the one that holds the lock (see admission_store) schedules, the
others only try to take the lock now and then. A round reads what waits and what runs, sizes the
in-flight window from the throughput measured over the last seconds (completions the tracker
recorded), plans with `scheduling`, admits into the outbox and wakes the relay.

Rounds keep their pace only while images wait for admission: fairness and the window are decided
round by round. The pace follows the measured throughput (about `round_images` finish between
rounds, within `interval_seconds` and half the target latency): a round costs the broker a backlog
probe, a Produce and a compressor Fetch, and PostgreSQL a transaction, whatever it admits.

The throughput is what finished over the last `sample_seconds`. Right after the pipeline was idle
that undercounts (the sample holds the idle part), and a window sized from it starved the
compressors for the first second of every upload; so until a whole sample has passed busy, the
throughput of the last whole busy sample counts as a floor.

When nothing waits, the leader sleeps until it is woken:
in process right after an upload commits (the route calls `wake`), and by a PostgreSQL
notification that every upload's transaction sends (`admission_store.ADMISSIONS_CHANNEL`, heard
on the leader's own connection), so uploads through other ingest instances wake it too. A
notification can be lost while the connection is down, so an idle leader still polls every
`idle_seconds`; losing its connection wakes it at once (the next round fails and starts over).

A round's events go to a few partitions of image.requested, rotating round by round (`placement`):
what is admitted is decided first, where it goes only spreads the work over the compressors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .admission_store import AdmissionStore, Snapshot
from .compressor_backlog import BacklogProbe
from .placement import round_partitions
from .scheduling import Admission, Policy, free_slots, owed_slots, plan_fair, plan_fifo, window_size

log = structlog.get_logger(__name__)


class SchedulerSettings(BaseSettings):
    """The fair scheduler (INGEST_SCHEDULER_*)."""

    model_config = SettingsConfigDict(env_prefix="INGEST_SCHEDULER_", env_file=".env", extra="ignore")

    policy: Policy = Field(
        "fair",
        description="`fair`: admit by tenant weight within an in-flight window; `fifo`: admit every "
        "image at once in upload order (the behaviour before the scheduler, kept for comparison).",
    )
    target_latency_seconds: float = Field(
        1.0, gt=0, description="Work ahead of a newly admitted image: window = throughput x this."
    )
    min_window: int = Field(
        16,
        ge=1,
        description="Images kept in flight beyond throughput x target latency: the pipeline's own "
        "latency (Kafka, the tracker's commits) and the whole window while idle.",
    )
    max_window: int = Field(10_000, ge=1, description="Most images kept in flight.")
    interval_seconds: float = Field(
        0.2,
        gt=0,
        description="Shortest pause between scheduling rounds while images wait for admission.",
    )
    round_images: int = Field(
        16,
        ge=0,
        description="While images wait, rounds are paced to admit about this many images each at the "
        "measured throughput: the pause is this / throughput, from `interval_seconds` up to half of "
        "`target_latency_seconds` (the window then still holds work for the compressors). Every "
        "round costs the same broker and database requests whatever it admits. 0: always "
        "`interval_seconds`.",
    )
    idle_seconds: float = Field(
        5.0,
        gt=0,
        description="Pause between rounds while no image waits: uploads wake the scheduler at once "
        "(in process and by PostgreSQL NOTIFY), so this is only the fallback for a lost notification.",
    )
    sample_seconds: float = Field(3.0, gt=0, description="Throughput is measured over this many seconds.")
    lock_retry_seconds: float = Field(
        1.0, gt=0, description="How often a follower tries to become the scheduler."
    )
    fifo_batch: int = Field(2000, ge=1, description="Images admitted per round with policy `fifo`.")
    partition_batch: int = Field(
        8,
        ge=0,
        description="A round's image.requested events go to one partition per this many images, "
        "rotating over the topic's partitions from round to round (each partition touched costs "
        "the broker a Produce and a compressor Fetch request). 0: hash every image id (the key) "
        "instead. Used once the backlog probe has read the topic's partitions.",
    )
    compressor_group: str = Field(
        "compressor",
        description="The compressors' consumer group: its lag on image.requested is the work ahead "
        "of a new image. Empty: bound images in flight instead (work ahead then includes results "
        "the tracker has not recorded yet).",
    )


class Scheduler:
    def __init__(
        self,
        store: AdmissionStore,
        settings: SchedulerSettings,
        on_admitted: Callable[[], None] = lambda: None,
        probe: BacklogProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._probe = probe
        self._settings = settings
        self._on_admitted = on_admitted
        self._wake = asyncio.Event()
        self._turn = 0
        self._cursor = 0  # partitions handed out so far (placement)
        self.window = settings.min_window
        self.throughput = 0.0  # images/s finished, as estimated at the last fair round
        self._busy_since: float | None = None  # when images were last seen in flight after none were
        self._busy_throughput = 0.0  # measured over the last sample that was busy throughout
        self.admitted = 0
        self.waiting = False  # images waited for admission at the last round
        store.listen(self.wake)

    def wake(self) -> None:
        """Called after an upload commits (in process or notified), so a round starts without waiting."""
        self._wake.set()

    async def run(self) -> None:
        """Schedule while leading, forever; errors give the lock up and start over."""
        try:
            while True:
                await self._step()
        finally:
            await self._store.resign()

    async def _step(self) -> None:
        # Cleared before the round reads, never after: a wake-up that arrives while the round runs
        # (an upload committed after its snapshot) keeps the event set and the next round is immediate.
        self._wake.clear()
        try:
            leading = await self._store.lead()
            if leading:
                await self.round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - PostgreSQL away or the lock lost: start over
            log.warning("scheduler.round_failed", error=repr(exc))
            await self._store.resign()
            leading = False
        await self._sleep(self.pause(leading))

    def pause(self, leading: bool) -> float:
        """Until the next round: the round pace while images wait, the idle fallback when none do."""
        cfg = self._settings
        if not leading:
            return cfg.lock_retry_seconds
        return self.pace() if self.waiting else cfg.idle_seconds

    def pace(self) -> float:
        """The pause while images wait: long enough for about `round_images` to finish, so a round
        admits a batch rather than an image or two, and short enough that the compressors' work
        ahead (the window: `target_latency_seconds` of work plus `min_window`) never runs out."""
        cfg = self._settings
        if cfg.round_images <= 0 or self.throughput <= 0:
            return cfg.interval_seconds
        longest = max(cfg.interval_seconds, cfg.target_latency_seconds / 2)
        return min(longest, max(cfg.interval_seconds, cfg.round_images / self.throughput))

    async def round(self) -> int:
        """One scheduling round; returns how many images were admitted."""
        cfg = self._settings
        snap = await self._store.snapshot(cfg.sample_seconds)
        self.waiting = any(r.queued for r in snap.requests)
        if not self.waiting:
            return 0
        # Kafka is asked only when there is a choice to make.
        backlog = await self._probe.backlog() if self._probe and cfg.policy == "fair" else None
        plan = self.plan(snap, backlog)
        if not plan:
            return 0
        partitions = self.partitions_for(sum(a.count for a in plan))
        count = await self._store.admit(plan, partitions)
        self.admitted += count
        if count:
            self._on_admitted()
            log.debug(
                "scheduler.admitted",
                count=count,
                window=self.window,
                requests=len(plan),
                partitions=partitions,
            )
        return count

    def partitions_for(self, images: int) -> list[int]:
        """The round's partitions (see placement); none while the topic's partitions are unknown."""
        known = self._probe.partitions() if self._probe else ()
        chosen, self._cursor = round_partitions(known, images, self._cursor, self._settings.partition_batch)
        return chosen

    def plan(self, snap: Snapshot, backlog: int | None = None) -> list[Admission]:
        """With the compressors' backlog known, admit what keeps it at the window; else fill the window."""
        cfg = self._settings
        if cfg.policy == "fifo":
            return plan_fifo(snap.requests, cfg.fifo_batch)
        idle = not any(r.in_flight for r in snap.requests)
        self.throughput = throughput = self.estimate(snap.completed / cfg.sample_seconds, idle)
        self.window = window_size(throughput, cfg.target_latency_seconds, cfg.min_window, cfg.max_window)
        if backlog is None:
            free = free_slots(self.window, snap.requests)
        else:
            free = min(
                max(0, self.window - backlog - snap.unpublished),
                free_slots(cfg.max_window, snap.requests),  # a bound whatever the tracker's lag
            )
        self._turn += 1
        free = max(free, owed_slots(snap.requests, snap.weights, self.window))
        return plan_fair(snap.requests, snap.weights, free, turn=self._turn)

    def estimate(self, measured: float, idle: bool) -> float:
        """The throughput to size the window with: `measured`, floored by the last whole busy sample's
        until a whole sample has passed since the pipeline was last idle (nothing in flight)."""
        now = self._clock()
        if idle or self._busy_since is None:
            self._busy_since = now
        if now - self._busy_since >= self._settings.sample_seconds:
            self._busy_throughput = measured
            return measured
        return max(measured, self._busy_throughput)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
