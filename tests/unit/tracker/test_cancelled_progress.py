"""A cancelled request's progress: finished once every image is done, failed or cancelled."""

from __future__ import annotations

from tracker.progress import Progress


def test_a_cancelled_request_finishes_when_its_in_flight_images_do():
    assert not Progress(10, 3, 1, cancelled=5, cancelling=True).finished
    assert Progress(10, 3, 1, cancelled=5, cancelling=True).status == "processing"
    last = Progress(10, 4, 1, cancelled=5, cancelling=True)
    assert last.finished
    assert last.status == "cancelled"
    assert last.fraction == 1.0


def test_without_a_cancel_the_status_rules_are_unchanged():
    assert Progress(2, 2, 0).status == "completed"
    assert Progress(2, 1, 1).status == "completed_with_errors"
    assert Progress(2, 0, 2).status == "failed"
