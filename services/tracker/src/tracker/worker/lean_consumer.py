"""Faust's aiokafka transport with a fetch routine that does not poll five times a second (issue 14).

aiokafka's background fetch routine (the consumer's `consumer_timeout_ms`, 200 ms by default)
waits for the first of: a fetch response, the application consuming buffered records, a seek or
offset reset, a paused partition resumed, an assignment change or a metadata update. Each of
those wakes it at once; the timeout is only a fallback, and Faust does not expose it, so an idle
worker's consumer thread woke every 200 ms to find nothing to do (strace: ~5 wake-ups a second,
each a GIL hand-over to and from the main thread). Waiting up to `FETCHER_WAKE_SECONDS` instead
changes no fetch that is sent: fetches still follow each response at once, and backoffs shorter
than the fallback (a partition whose records wait to be consumed, a node in error) still set the
routine's timeout themselves.

While results keep coming, fetches gather them (`gather_busy_fetches`): a fetch that brought
records is followed by one that asks the broker to wait up to `TRACKER_FETCH_GATHER_MS` for
`GATHER_MIN_BYTES`, so the results of that time cost one fetch response, one hand-over to the
main thread and one transaction instead of one each. A fetch that brought nothing switches back
to Faust's long poll (at least 1 byte, up to 1.5 s), so an idle worker fetches as rarely as
before and the first result after a quiet spell is delivered at once. Off unless the setting is above 0:
where compressors already send a busy member's results together, fetches are batches anyway
(docs/operations.md, "Tracker and notifier").

Nothing here touches what is fetched, acknowledged or committed: offsets are still committed by
Faust's consumer only for acknowledged events, after the agent's transaction.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

# The fallback wake-up of aiokafka's fetch routine (its consumer_timeout_ms), seconds.
FETCHER_WAKE_SECONDS = 1.0


# While busy, a fetch returns once this much is there (about 35 results) or its wait is over.
GATHER_MIN_BYTES = 16_384


def gather_busy_fetches(fetcher: Any, gather_ms: int, min_bytes: int = GATHER_MIN_BYTES) -> None:
    """Make aiokafka's fetcher gather records for `gather_ms` after a fetch that brought some.

    aiokafka builds each fetch request from the fetcher's `_fetch_min_bytes`/`_fetch_max_wait_ms`
    when it sends it, and sends the next one only after the previous response was handled; the
    outcome of each response (records or not) sets those two for the next.
    """
    fetch = fetcher._proc_fetch_request
    idle = (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms)

    async def fetch_then_choose_the_next(assignment: Any, node_id: int, request: Any) -> bool:
        got_records = await fetch(assignment, node_id, request)
        busy = (min_bytes, gather_ms)
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = busy if got_records else idle
        return got_records

    fetcher._proc_fetch_request = fetch_then_choose_the_next


class LeanConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread: a 1 s fetch-routine fallback, fetches that gather while busy."""

    async def on_start(self) -> None:
        await super().on_start()  # builds and starts the aiokafka consumer, with its fetcher
        app: Any = self.app  # a TrackerApp (app.py), which carries the tracker's settings
        gather_ms = app.settings.fetch_gather_ms
        if gather_ms > 0 and self._consumer is not None:
            gather_busy_fetches(self._consumer._fetcher, gather_ms)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka's constructor argument consumer_timeout_ms, which Faust does not pass; it is
        # read when the consumer starts (and builds its fetcher), after this returns.
        consumer._consumer_timeout = FETCHER_WAKE_SECONDS
        return consumer


class LeanConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return LeanConsumerThread(self, loop=self.loop, beacon=self.beacon)


class LeanTransport(faust_aiokafka.Transport):
    """The `kafka://` transport of Faust with the consumer above; producer and admin unchanged."""

    Consumer = LeanConsumer
