"""Results held for a moment while the member's other images finish, then sent together.

librdkafka sends one Produce request per partition and batch, and a member finishes its images
one at a time, so every result used to be a Produce request of its own, a fetch of its own in the
tracker and a transaction of its own there (issue 14). A result is now held while other images of
the member are still at work, for at most `hold_seconds`, and goes out with the results that
finish meanwhile. When nothing else is at work, a result is sent at once: an idle pipeline's last
image is never held. Each caller still waits for the broker's acknowledgement of its own message
before its offset counts as done.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Message


class Sender(Protocol):
    def send_nowait(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Message]: ...


@dataclass(frozen=True)
class _Held:
    topic: str
    key: bytes
    value: bytes
    acknowledged: asyncio.Future[Message]


class HeldSends:
    def __init__(
        self,
        producer: Sender,
        hold_seconds: float,
        others_working: Callable[[int], bool],
        max_held: int = 64,
    ) -> None:
        """`others_working(held)` tells whether images other than the `held` ones are at work."""
        self._producer = producer
        self._hold = hold_seconds
        self._others_working = others_working
        self._max_held = max_held
        self._held: list[_Held] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    async def send(self, topic: str, key: bytes, value: bytes) -> Message:
        """Send one message, perhaps with others; returns once the broker acknowledged it."""
        loop = asyncio.get_running_loop()
        held = _Held(topic, key, value, loop.create_future())
        self._held.append(held)
        if self._hold <= 0 or len(self._held) >= self._max_held or not self._others_working(len(self._held)):
            self.release()
        elif self._timer is None:
            self._timer = loop.call_later(self._hold, self.release)
        return await held.acknowledged

    def release(self) -> None:
        """Send everything held now (also when another image finishes with nothing else at work)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for message in held:
            sent = self._producer.send_nowait(message.topic, message.key, message.value)
            sent.add_done_callback(functools.partial(_pass_on, waiting=message.acknowledged))


def _pass_on(done: asyncio.Future[Message], waiting: asyncio.Future[Message]) -> None:
    if waiting.done():  # its image was cancelled (shutdown): the message went out anyway
        return
    if done.cancelled():
        waiting.cancel()
    elif (error := done.exception()) is not None:
        waiting.set_exception(error)
    else:
        waiting.set_result(done.result())
