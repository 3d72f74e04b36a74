"""Offsets committed never past unfinished work, revocation, and the delay queue."""

from __future__ import annotations

from compressor.offsets import OffsetTracker
from compressor.parking import DelayQueue
from compressor.retrying import RetryPolicy


def test_commit_point_waits_for_the_oldest_unfinished_message():
    tracker = OffsetTracker()
    parts = {n: tracker.started("t", 0, n) for n in (10, 11, 12)}
    parts[11].finished(11)
    parts[12].finished(12)
    assert tracker.to_commit() == {("t", 0): 10}
    parts[10].finished(10)
    assert tracker.to_commit() == {("t", 0): 13}
    assert tracker.to_commit() == {}  # nothing moved since


def test_a_revoked_partition_answers_its_last_offset_and_is_forgotten():
    tracker = OffsetTracker()
    part = tracker.started("t", 3, 5)
    part.finished(5)
    tracker.started("t", 3, 6)
    assert tracker.release("t", 3) == 6
    assert not tracker.owns(part)
    assert tracker.in_flight == 0
    assert tracker.release("t", 3) is None


def test_work_finished_after_revocation_cannot_move_the_new_ownership():
    tracker = OffsetTracker()
    old = tracker.started("t", 0, 7)
    tracker.release("t", 0)
    new = tracker.started("t", 0, 7)  # redelivered to us after the partition came back
    old.finished(7)  # the old task ends late
    assert tracker.to_commit() == {("t", 0): 7}
    new.finished(7)
    assert tracker.to_commit() == {("t", 0): 8}


def test_delay_queue_gives_due_items_in_time_order_and_drops_an_owner():
    queue: DelayQueue[str] = DelayQueue()
    a, b = object(), object()
    queue.push(5.0, a, "late")
    queue.push(1.0, a, "early")
    queue.push(2.0, b, "other")
    assert queue.next_due() == 1.0
    assert queue.pop_due(now=1.5, limit=10) == [(a, "early")]
    assert queue.drop_owner(b) == 1
    assert queue.pop_due(now=10, limit=10) == [(a, "late")]
    assert len(queue) == 0


def test_delay_queue_pops_at_most_the_limit():
    queue: DelayQueue[int] = DelayQueue()
    for n in range(5):
        queue.push(float(n), None, n)
    assert [item for _, item in queue.pop_due(now=10, limit=2)] == [0, 1]
    assert len(queue) == 3


def test_retry_after_is_honoured_not_shortened():
    policy = RetryPolicy(max_attempts=4, base_seconds=0.1, max_seconds=1.0, retry_after_max_seconds=60)
    assert policy.delay_before(2, retry_after=7.0) == 7.0
    assert 0.05 <= policy.delay_before(2) <= 0.1
    assert policy.may_retry(1, transient=True, retry_after=60)
    assert not policy.may_retry(1, transient=True, retry_after=61)  # longer than we hold work
    assert not policy.may_retry(4, transient=True)
    assert not policy.may_retry(1, transient=False)


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=10, base_seconds=1.0, max_seconds=4.0)
    assert 2.0 <= policy.delay_before(4) <= 4.0
    assert 2.0 <= policy.delay_before(9) <= 4.0
