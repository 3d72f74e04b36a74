"""The worker's Faust parts cut for CPU (issue 14): what they leave out, and what they keep."""

from __future__ import annotations

import asyncio

from faust.types import TP
from tracker.config import Settings
from tracker.worker.app import create_faust_app
from tracker.worker.lean_consumer import (
    FETCHER_WAKE_SECONDS,
    GATHER_MIN_BYTES,
    LeanTransport,
    gather_busy_fetches,
)
from tracker.worker.quiet_monitor import QuietMonitor


def app_for_test():
    return create_faust_app(
        Settings(data_dir="/tmp/tracker-faust-parts-test", kafka={"bootstrap_servers": "127.0.0.1:9"})
    )


async def test_the_aiokafka_consumer_gets_a_one_second_fetch_fallback_and_keeps_the_rest():
    app = app_for_test()
    assert isinstance(app.transport, LeanTransport)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)  # builds, connects to nothing
    try:
        assert consumer._consumer_timeout == FETCHER_WAKE_SECONDS == 1.0
        # What is fetched and committed stays Faust's: manual commits, its fetch wait and group.
        assert consumer._enable_auto_commit is False
        assert consumer._fetch_max_wait_ms == 1500
        assert consumer._group_id == "tracker"
    finally:
        await consumer.stop()


async def test_the_monitor_keeps_only_the_livelock_checks_clock():
    app = app_for_test()
    monitor = app.monitor
    assert isinstance(monitor, QuietMonitor)
    tp = TP("image.results", 3)
    assert monitor.on_stream_event_in(tp, 7, object(), object()) is None  # type: ignore[arg-type]
    assert tp in monitor.stream_inbound_time
    monitor.on_message_in(tp, 7, object())  # type: ignore[arg-type]
    monitor.on_stream_event_out(tp, 7, object(), object(), None)  # type: ignore[arg-type]
    monitor.on_message_out(tp, 7, object())  # type: ignore[arg-type]
    assert (monitor.messages_received_total, monitor.events_total, monitor.messages_active) == (0, 0, 0)
    assert not monitor.tp_read_offsets


async def test_the_monitor_sampler_ends_at_once_instead_of_ticking_every_second():
    monitor = QuietMonitor()
    sampler = next(task for task in monitor._get_tasks() if task.fun.__name__ == "_sampler")
    await asyncio.wait_for(sampler.fun(monitor), timeout=5)


class FakeFetcher:
    """aiokafka's Fetcher as gather_busy_fetches sees it: the two request fields and one fetch."""

    def __init__(self, responses: list[bool]) -> None:
        self._fetch_min_bytes, self._fetch_max_wait_ms = 1, 1500
        self.responses = responses
        self.sent: list[tuple[int, int]] = []

    async def _proc_fetch_request(self, assignment, node_id, request) -> bool:
        self.sent.append((self._fetch_min_bytes, self._fetch_max_wait_ms))
        return self.responses.pop(0)


async def test_fetches_gather_while_records_come_and_long_poll_again_once_none_came():
    fetcher = FakeFetcher([True, True, False, False, True])
    gather_busy_fetches(fetcher, 200)
    outcomes = [await fetcher._proc_fetch_request(None, 1, None) for _ in range(5)]
    assert outcomes == [True, True, False, False, True]  # what aiokafka's own fetch returned
    idle, busy = (1, 1500), (GATHER_MIN_BYTES, 200)
    assert fetcher.sent == [idle, busy, busy, idle, idle]
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == busy  # the next, after records


def test_fetches_gather_only_when_configured():
    assert Settings().fetch_gather_ms == 0
    assert Settings(fetch_gather_ms=150).fetch_gather_ms == 150
