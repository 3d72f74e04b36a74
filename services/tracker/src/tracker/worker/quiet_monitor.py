"""A Faust Monitor that keeps no statistics: the tracker reads none of them (issue 14).

Faust's Monitor is a sensor every event passes through four times (message in, stream event in
and out, message out), each time updating counters, time stamps and per-stream dicts, and it
samples rates on a timer every second. Those figures only feed Faust's web views and its
statsd/Datadog/Prometheus sensors, none of which this worker runs (`web_enabled=False`; the
worker's own Prometheus metrics are counted in agents.py). Nothing of it decides what is read,
acknowledged or committed: acks and offsets live in the consumer, not in the sensors.

Kept: the time a partition's stream last took an event (`stream_inbound_time`), which Faust's
livelock check (`verify_all_partitions_active`) reads to tell a stalled stream from a busy one;
without it that check would log false "stream idle" errors. Rare hooks (commits, sends,
rebalances, assignments) are left to Faust's Monitor unchanged.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor
from mode import Service


class QuietMonitor(Monitor):
    """Monitor without the per-event bookkeeping and the one-second sampler."""

    @Service.task
    async def _sampler(self) -> None:
        """Faust's sampler computes events/s every second for its web views; there are none."""
        return

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing to count: no reader for messages_received_total or message.time_in."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Only the time the livelock check needs; no per-event state (on_stream_event_out gets None)."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[Any, Any] | None = None
    ) -> None:
        """Nothing to time: events_runtime has no reader."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing to time: message.time_out/time_total have no reader."""
