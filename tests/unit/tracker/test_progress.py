"""Request progress rules and the completion event id (pure)."""

from uuid import uuid4

import pytest
from tracker.progress import Progress, completion_event_id


@pytest.mark.parametrize(
    ("total", "processed", "failed", "status"),
    [
        (3, 0, 0, "pending"),
        (3, 1, 0, "processing"),
        (3, 0, 1, "processing"),
        (3, 3, 0, "completed"),
        (3, 2, 1, "completed_with_errors"),
        (3, 0, 3, "failed"),
        (0, 0, 0, "completed"),
    ],
)
def test_status_follows_the_counts(total, processed, failed, status):
    assert Progress(total, processed, failed).status == status


def test_a_request_is_finished_when_every_image_is_done_or_failed():
    assert not Progress(3, 1, 1).finished
    assert Progress(3, 2, 1).finished


def test_progress_runs_from_zero_to_one():
    assert Progress(4, 0, 0).fraction == 0.0
    assert Progress(4, 1, 1).fraction == 0.5
    assert Progress(4, 3, 1).fraction == 1.0


def test_the_completion_event_id_is_the_same_every_time_for_one_request():
    rid = uuid4()
    assert completion_event_id(rid) == completion_event_id(rid)
    assert completion_event_id(rid) != completion_event_id(uuid4())
