"""The agent body: decode batches, record through a fake repository, signal completions; the Faust agent."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pipeline_schemas import ImageCompressed, ImageCompressionFailed, RequestCompleted, encode, utc_now
from prometheus_client import REGISTRY
from tracker.worker.agents import process_batches, ready_batches, record_until_stored
from tracker.worker.repository import Recorded


class FakeResultRecorder:
    """Counts each image once, like the real one, and records every call."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen: set = set()
        self.calls: list = []
        self.batches: list = []

    async def record_results(self, events) -> list[Recorded]:
        self.batches.append(list(events))
        return [self._record(event) for event in events]

    def _record(self, event) -> Recorded:
        self.calls.append(event)
        if event.image_id in self.seen:
            return Recorded(counted=False)
        self.seen.add(event.image_id)
        if len(self.seen) < self.total:
            return Recorded(counted=True)
        done = RequestCompleted(
            request_id=event.request_id,
            status="completed",
            total_images=self.total,
            processed_images=self.total,
            failed_images=0,
            completed_at=utc_now(),
            output_csv_url="http://t/o.csv",
        )
        return Recorded(counted=True, completed=done)


class FakeRelay:
    def __init__(self, woken: list[int]) -> None:
        self.woken = woken

    def wake(self) -> None:
        self.woken.append(1)


async def values(*raw: bytes):
    """Each message in a batch of its own."""
    for item in raw:
        yield [item]


async def batches(*groups: list[bytes]):
    for group in groups:
        yield group


def compressed(request_id, image_id=None) -> ImageCompressed:
    return ImageCompressed(
        request_id=request_id,
        image_id=image_id or uuid4(),
        output_url="http://m/x.jpg",
        input_bytes=10,
        output_bytes=5,
        width=1,
        height=1,
    )


async def test_each_result_is_recorded_and_a_completion_is_signalled_once():
    rid = uuid4()
    repo = FakeResultRecorder(total=2)
    first = compressed(rid)
    signals: list[int] = []
    stream = values(encode(first), encode(first), encode(compressed(rid)))
    await process_batches(stream, repo.record_results, lambda: signals.append(1))
    assert len(repo.calls) == 3
    assert repo.seen == {first.image_id} | {repo.calls[2].image_id}
    assert signals == [1]


async def test_an_undecodable_message_is_skipped_and_the_rest_still_recorded():
    rid = uuid4()
    repo = FakeResultRecorder(total=5)
    failed = ImageCompressionFailed(request_id=rid, image_id=uuid4(), reason_code="timeout", message="slow")
    await process_batches(values(b"not json", encode(failed)), repo.record_results, lambda: None)
    assert [c.image_id for c in repo.calls] == [failed.image_id]


async def test_recording_waits_out_a_database_outage():
    attempts = {"n": 0}

    async def flaky(events):
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionRefusedError("database restarting")
        return [Recorded(counted=True) for _ in events]

    result = await record_until_stored(flaky, [compressed(uuid4())], max_delay=0.01)
    assert [r.counted for r in result] == [True]
    assert attempts["n"] == 3


async def test_a_batch_aborted_by_a_deadlock_is_recorded_again():
    import asyncpg

    attempts = {"n": 0}

    async def deadlocked_once(events):
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return [Recorded(counted=True) for _ in events]

    result = await record_until_stored(deadlocked_once, [compressed(uuid4())], max_delay=0.01)
    assert [r.counted for r in result] == [True]
    assert attempts["n"] == 2


async def test_a_batch_is_recorded_in_one_call_and_its_completion_signalled_once():
    rid = uuid4()
    repo = FakeResultRecorder(total=3)
    first, second, third = compressed(rid), compressed(rid), compressed(rid)
    signals: list[int] = []
    stream = batches(
        [encode(first), encode(second), encode(first), b"not json"],
        [encode(third), encode(second)],
    )
    await process_batches(stream, repo.record_results, lambda: signals.append(1))
    assert [[e.image_id for e in b] for b in repo.batches] == [
        [first.image_id, second.image_id, first.image_id],
        [third.image_id, second.image_id],
    ]
    assert signals == [1]


async def test_a_programming_error_is_not_retried_forever():
    async def broken(events):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await record_until_stored(broken, [compressed(uuid4())], max_delay=0.01)


class Delivery:
    """A delivered message: its value, and whether it was acknowledged."""

    def __init__(self, value: bytes) -> None:
        self.value = value


class FakeChannel:
    """Delivers messages in bursts, as a Kafka fetch does; records every acknowledgement."""

    def __init__(self, *bursts: list[bytes]) -> None:
        self.bursts = [[Delivery(v) for v in burst] for burst in bursts]
        self.queued: list[Delivery] = []
        self.acked: list[bytes] = []

    async def events(self):
        for burst in self.bursts:
            self.queued = list(burst)  # the next burst arrives only once this one is taken
            while self.queued:
                yield self.queued.pop(0)

    def more_waiting(self) -> bool:
        return bool(self.queued)

    async def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.value)


async def test_a_batch_is_what_was_delivered_and_is_acknowledged_only_once_stored():
    channel = FakeChannel([b"a"], [b"b", b"c", b"d"], [b"e", b"f"])
    taken = []
    async for batch in ready_batches(channel.events(), channel.more_waiting, channel.ack):
        # Nothing of this batch is acknowledged while it is being stored.
        assert not set(batch) & set(channel.acked)
        taken.append(batch)
    assert taken == [[b"a"], [b"b", b"c", b"d"], [b"e", b"f"]]
    assert channel.acked == [b"a", b"b", b"c", b"d", b"e", b"f"]


async def test_a_batch_never_exceeds_its_size():
    channel = FakeChannel([b"1", b"2", b"3", b"4", b"5"])
    sizes = [len(b) async for b in ready_batches(channel.events(), channel.more_waiting, channel.ack, 2)]
    assert sizes == [2, 2, 1]


async def test_a_batch_that_failed_to_be_stored_is_never_acknowledged():
    channel = FakeChannel([b"x", b"y"], [b"z"])
    repo_down = ConnectionRefusedError("database away")

    async def consume():
        async for _batch in ready_batches(channel.events(), channel.more_waiting, channel.ack):
            raise repo_down

    with pytest.raises(ConnectionRefusedError):
        await consume()
    assert channel.acked == []


async def test_the_faust_agent_records_results_through_its_dependencies():
    from tracker.config import Settings
    from tracker.worker.app import create_faust_app

    app = create_faust_app(
        Settings(data_dir="/tmp/tracker-agent-test", kafka={"bootstrap_servers": "unused:9092"})
    )
    app.finalize()
    app.flow_control.resume()
    repo = FakeResultRecorder(total=1)
    woken: list[int] = []
    app.deps.provide(repo, FakeRelay(woken))
    agent = app.agents["record-results"]
    async with agent.test_context() as agent_under_test:
        event = compressed(uuid4())
        await agent_under_test.put(encode(event))
    assert [c.image_id for c in repo.calls] == [event.image_id]
    assert woken == [1]


def test_the_worker_refuses_to_record_before_it_started():
    from tracker.worker.app import WorkerDeps

    with pytest.raises(RuntimeError, match="not started"):
        WorkerDeps().recorder  # noqa: B018 - the property raises


def counter(name: str, label: str, value: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "tracker", label: value}) or 0.0


async def test_results_and_completions_are_counted_in_the_workers_metrics():
    names = [
        ("imgpipe_results_recorded_total", "outcome", "counted"),
        ("imgpipe_results_recorded_total", "outcome", "duplicate"),
        ("imgpipe_requests_completed_total", "status", "completed"),
    ]
    before = [counter(*n) for n in names]
    rid, image_id = uuid4(), uuid4()
    twice = values(encode(compressed(rid, image_id)), encode(compressed(rid, image_id)))

    await process_batches(twice, FakeResultRecorder(total=1).record_results, lambda: None)

    assert [counter(*n) - b for n, b in zip(names, before, strict=True)] == [1, 1, 1]
