"""The admission loop with a hand-written store: leadership, window from throughput, errors, FIFO."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import uuid4

import pytest
from ingest.admission import Scheduler, SchedulerSettings
from ingest.admission_store import Snapshot
from ingest.scheduling import ActiveRequest, Admission


@dataclass
class FakeAdmissionStore:
    """Records what the scheduler asked; `leading` and `failures` script the database's answers."""

    requests: list[ActiveRequest] = field(default_factory=list)
    completed: int = 0
    unpublished: int = 0
    leading: bool = True
    failures: int = 0
    admitted: list[list[Admission]] = field(default_factory=list)
    placed: list[list[int]] = field(default_factory=list)  # the partitions of each admit
    snapshots: int = 0
    resigned: int = 0
    wake: Callable[[], None] | None = None  # what the scheduler gave listen()
    during_snapshot: Callable[[], None] = lambda: None  # e.g. an upload committing meanwhile

    def listen(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    async def lead(self) -> bool:
        return self.leading

    async def snapshot(self, sample_seconds: float) -> Snapshot:
        self.snapshots += 1
        self.during_snapshot()
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection lost")
        return Snapshot(list(self.requests), {}, self.completed, self.unpublished)

    async def admit(self, plan: Sequence[Admission], partitions: Sequence[int] = ()) -> int:
        self.admitted.append(list(plan))
        self.placed.append(list(partitions))
        return sum(a.count for a in plan)

    async def resign(self) -> None:
        self.resigned += 1


def settings(**overrides) -> SchedulerSettings:
    base = {"min_window": 10, "max_window": 1000, "interval_seconds": 0.001, "lock_retry_seconds": 0.001}
    return SchedulerSettings(**{**base, **overrides})


def request(tenant: str, queued: int, in_flight: int = 0, age: int = 0) -> ActiveRequest:
    return ActiveRequest(uuid4(), tenant, queued, in_flight, "normal", age)


async def test_a_follower_never_reads_or_admits():
    store = FakeAdmissionStore([request("a", 100)], leading=False)
    scheduler = Scheduler(store, settings())

    for _ in range(3):
        await scheduler._step()

    assert (store.snapshots, store.admitted) == (0, [])


async def test_the_leader_fills_the_window_and_wakes_the_relay():
    store = FakeAdmissionStore([request("a", 100, in_flight=4)])
    woken = []
    scheduler = Scheduler(store, settings(), on_admitted=lambda: woken.append(1))

    admitted = await scheduler.round()

    assert admitted == 6  # minimum window 10, 4 already in flight
    assert woken == [1]


async def test_the_window_follows_measured_throughput_within_its_bounds():
    store = FakeAdmissionStore([request("a", 10_000)], completed=600)
    scheduler = Scheduler(store, settings(sample_seconds=3.0, target_latency_seconds=0.5))

    await scheduler.round()
    assert scheduler.window == 110  # 600 in 3 s is 200/s; half a second of it, and the slack
    store.completed = 3_000_000
    await scheduler.round()
    assert scheduler.window == 1000


async def test_nothing_to_admit_neither_writes_nor_wakes():
    store = FakeAdmissionStore([request("a", 0, in_flight=3)])
    woken = []
    scheduler = Scheduler(store, settings(), on_admitted=lambda: woken.append(1))

    assert await scheduler.round() == 0
    assert (store.admitted, woken) == ([], [])


async def test_a_database_error_gives_the_lock_up_and_the_next_step_starts_over():
    store = FakeAdmissionStore([request("a", 5)], failures=1)
    scheduler = Scheduler(store, settings())

    await scheduler._step()
    assert (store.resigned, store.admitted) == (1, [])
    await scheduler._step()
    assert scheduler.admitted == 5


async def test_fifo_admits_everything_oldest_first_whatever_the_window():
    old, new = request("a", 300, in_flight=50, age=0), request("b", 10, age=1)
    store = FakeAdmissionStore([new, old])
    scheduler = Scheduler(store, settings(policy="fifo", fifo_batch=1000))

    await scheduler.round()

    assert store.admitted == [[Admission(old.request_id, 300), Admission(new.request_id, 10)]]


@dataclass
class FakeProbe:
    lag: int | None

    async def backlog(self) -> int | None:
        return self.lag

    def partitions(self) -> Sequence[int]:
        return ()


async def test_with_the_compressors_backlog_known_the_window_bounds_work_ahead_not_results_in_transit():
    # 40 in flight, but only 4 still ahead of the compressors (the rest wait for the tracker).
    store = FakeAdmissionStore([request("a", 1000, in_flight=40)])
    scheduler = Scheduler(store, settings(min_window=10), probe=FakeProbe(4))

    assert await scheduler.round() == 6


async def test_events_still_in_the_outbox_count_as_work_ahead():
    store = FakeAdmissionStore([request("a", 1000, in_flight=7)])
    store.unpublished = 7  # admitted (so in flight), not yet in Kafka
    scheduler = Scheduler(store, settings(min_window=10), probe=FakeProbe(0))

    assert await scheduler.round() == 3


async def test_an_unknown_backlog_falls_back_to_the_in_flight_window():
    store = FakeAdmissionStore([request("a", 1000, in_flight=40)])
    scheduler = Scheduler(store, settings(min_window=10), probe=FakeProbe(None))

    assert await scheduler.round() == 0


async def test_max_window_bounds_images_in_flight_whatever_the_backlog():
    store = FakeAdmissionStore([request("a", 10_000, in_flight=995)], completed=30_000)
    scheduler = Scheduler(store, settings(min_window=10, max_window=1000), probe=FakeProbe(0))

    assert await scheduler.round() == 5


class CountingProbe:
    def __init__(self) -> None:
        self.asked = 0

    async def backlog(self) -> int | None:
        self.asked += 1
        return 0

    def partitions(self) -> Sequence[int]:
        return ()


async def test_rounds_keep_their_pace_only_while_images_wait():
    store = FakeAdmissionStore([request("a", 0, in_flight=3)])
    probe = CountingProbe()
    scheduler = Scheduler(store, settings(interval_seconds=0.2, idle_seconds=5.0), probe=probe)

    await scheduler.round()
    assert scheduler.pause(leading=True) == 5.0  # nothing waits: the idle fallback
    assert probe.asked == 0  # and Kafka is not asked
    store.requests = [request("a", 50)]
    await scheduler.round()
    assert scheduler.pause(leading=True) == 0.2
    assert probe.asked == 1
    assert scheduler.pause(leading=False) == 0.001  # a follower keeps trying the lock


async def test_the_store_wakes_an_idle_scheduler():
    store = FakeAdmissionStore([])
    scheduler = Scheduler(store, settings(idle_seconds=3600))
    assert store.wake is not None
    waiting = asyncio.create_task(scheduler._step())
    for _ in range(100):  # until the round ran; the scheduler then waits for up to an hour
        if store.snapshots:
            break
        await asyncio.sleep(0)
    store.requests = [request("a", 5)]
    store.wake()  # a notification: an upload committed through another instance

    await asyncio.wait_for(waiting, timeout=30)  # a bound, not a speed: lost, it would wait 3600 s
    await scheduler._step()
    assert scheduler.admitted == 5


async def test_an_upload_committed_during_a_round_is_not_missed():
    store = FakeAdmissionStore([])
    scheduler = Scheduler(store, settings(idle_seconds=3600))
    store.during_snapshot = scheduler.wake  # committed after the round read: it saw nothing

    await asyncio.wait_for(scheduler._step(), timeout=30)  # returns at once: the wake-up was kept
    store.during_snapshot = lambda: None
    store.requests = [request("a", 2)]
    await scheduler._step()
    assert scheduler.admitted == 2


@dataclass
class PartitionedProbe:
    named: tuple[int, ...]

    async def backlog(self) -> int | None:
        return 0

    def partitions(self) -> Sequence[int]:
        return self.named


async def test_each_round_places_its_events_in_few_partitions_rotating_over_the_topic():
    store = FakeAdmissionStore([request("a", 10_000)])
    scheduler = Scheduler(
        store, settings(min_window=6, partition_batch=8), probe=PartitionedProbe(tuple(range(12)))
    )

    for _ in range(12):
        store.requests = [request("a", 10_000)]  # nothing in flight: each round admits the window
        await scheduler.round()

    assert all(sum(a.count for a in plan) == 6 for plan in store.admitted)
    assert all(len(placed) == 1 for placed in store.placed)
    assert sorted(p for placed in store.placed for p in placed) == list(range(12))


async def test_without_the_topics_partitions_or_with_placement_off_the_key_decides():
    unknown, off, unprobed = (FakeAdmissionStore([request("a", 100)]) for _ in range(3))

    await Scheduler(unknown, settings(), probe=PartitionedProbe(())).round()
    await Scheduler(off, settings(partition_batch=0), probe=PartitionedProbe((0, 1))).round()
    await Scheduler(unprobed, settings()).round()  # no probe at all (no compressor group)

    for store in (unknown, off, unprobed):
        assert store.placed == [[]]
        assert [a.count for a in store.admitted[0]] == [10]  # admitted as before, hashed by key


async def test_rounds_are_paced_for_a_batch_of_images_at_the_measured_throughput():
    paced = settings(interval_seconds=0.2, target_latency_seconds=1.0, sample_seconds=1.0, round_images=8)
    store = FakeAdmissionStore([request("a", 10_000)], completed=20)
    scheduler = Scheduler(store, paced)

    await scheduler.round()  # 20 images/s finished: 8 of them take 0.4 s
    assert scheduler.pause(leading=True) == pytest.approx(0.4)

    store.completed = 100  # 100/s: 0.08 s, but never below the interval
    await scheduler.round()
    assert scheduler.pause(leading=True) == 0.2

    store.completed = 4  # 4/s: 2 s, but never past half the target latency
    await scheduler.round()
    assert scheduler.pause(leading=True) == 0.5


async def test_without_a_measured_throughput_or_with_round_images_0_rounds_keep_the_interval():
    idle_start = Scheduler(FakeAdmissionStore([request("a", 100)]), settings(interval_seconds=0.2))
    off = Scheduler(
        FakeAdmissionStore([request("a", 100)], completed=30),
        settings(interval_seconds=0.2, round_images=0, sample_seconds=1.0),
    )

    await idle_start.round()
    await off.round()

    assert idle_start.pause(leading=True) == off.pause(leading=True) == 0.2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_after_idle_the_window_keeps_the_last_busy_throughput_until_a_whole_sample_is_busy():
    clock = FakeClock()
    store = FakeAdmissionStore([request("a", 10_000)], completed=0)
    scheduler = Scheduler(store, settings(sample_seconds=3.0, target_latency_seconds=0.5), clock=clock)
    await scheduler.round()  # nothing in flight: the pipeline starts from idle
    store.requests = [request("a", 10_000, in_flight=50)]
    store.completed = 600  # 200/s over a sample that was busy throughout
    clock.now += 3.0
    await scheduler.round()
    assert scheduler.window == 110

    store.requests = [request("b", 500)]  # idle since: nothing in flight
    store.completed = 30  # the sample holds mostly the idle time
    clock.now += 60
    await scheduler.round()
    assert scheduler.window == 110  # 200/s still, not 10/s
    store.requests = [request("b", 400, in_flight=60)]
    store.completed = 150  # 50/s, within the first sample of the busy period
    clock.now += 1.0
    await scheduler.round()
    assert scheduler.window == 110
    clock.now += 2.0  # a whole sample busy: what it measures counts, up or down
    await scheduler.round()
    assert scheduler.window == 35  # 50/s for half a second, and the slack


async def test_a_scheduler_that_never_saw_a_busy_sample_uses_what_it_measures():
    clock = FakeClock()
    store = FakeAdmissionStore([request("a", 10_000)], completed=30)
    scheduler = Scheduler(store, settings(sample_seconds=3.0, target_latency_seconds=0.5), clock=clock)
    await scheduler.round()
    assert scheduler.window == 15  # 10/s: nothing better known
