"""The ETA rules (pure): remaining images over the request's own recent completion rate."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tracker.api.models import RequestStatus
from tracker.eta import MIN_FINISHED, RecentCompletions, completion_rate, eta_seconds

from .fakes import request_row

NOW = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)


def recent(count: int, seconds_ago: float) -> RecentCompletions:
    return RecentCompletions(count, NOW - timedelta(seconds=seconds_ago), NOW)


def test_the_rate_counts_completions_after_the_first_one_up_to_now():
    assert completion_rate(recent(21, 10)) == 2.0


def test_a_stall_since_the_last_completion_lowers_the_rate():
    assert completion_rate(recent(11, 20)) == 0.5


def test_there_is_no_rate_with_too_few_completions_or_no_elapsed_time():
    assert completion_rate(recent(MIN_FINISHED - 1, 10)) is None
    assert completion_rate(RecentCompletions(5, None, NOW)) is None
    assert completion_rate(recent(5, 0)) is None


def test_the_eta_is_what_remains_over_the_rate():
    assert eta_seconds(100, recent(21, 10)) == 50.0
    assert eta_seconds(3, recent(11, 20)) == 6.0


def test_nothing_remaining_or_no_rate_gives_no_eta():
    assert eta_seconds(0, recent(21, 10)) is None
    assert eta_seconds(100, recent(1, 10)) is None


def test_the_status_counts_queued_and_in_flight_images_as_remaining():
    row = replace(
        request_row(uuid4(), total=100, processed=15, failed=5),
        admitted_images=40,
        cancelled_images=10,
        recent_finished=11,
        recent_first_finished_at=NOW - timedelta(seconds=5),
        read_at=NOW,
    )
    status = RequestStatus.of(row)
    assert status.queued_images == 50
    assert status.eta_seconds == 35.0  # (100 - 15 - 5 - 10) images at 2 per second


def test_a_finished_request_or_one_without_completions_has_no_eta():
    done = replace(request_row(uuid4(), total=4, processed=4, failed=0), read_at=NOW, recent_finished=4)
    assert (
        RequestStatus.of(replace(done, recent_first_finished_at=NOW - timedelta(seconds=2))).eta_seconds
        is None
    )
    fresh = replace(request_row(uuid4(), total=4, processed=0, failed=0), read_at=NOW)
    assert RequestStatus.of(fresh).eta_seconds is None
