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

Nothing here touches what is fetched, acknowledged or committed: offsets are still committed by
Faust's consumer only for acknowledged events, after the agent's transaction.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

# The fallback wake-up of aiokafka's fetch routine (its consumer_timeout_ms), seconds.
FETCHER_WAKE_SECONDS = 1.0


class LeanConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, building its aiokafka consumer with a 1 s fetch-routine fallback."""

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
