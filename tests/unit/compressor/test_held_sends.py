"""Results held while the member's other images finish, then sent together (issue 14)."""

from __future__ import annotations

import asyncio

import pytest
from compressor.held_sends import HeldSends

from tests.support.servers import wait_until


class ScriptedSender:
    """Records what is sent; each message is acknowledged (or failed) when the test says so."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.acks: dict[bytes, asyncio.Future] = {}

    def send_nowait(self, topic: str, key: bytes, value: bytes) -> asyncio.Future:
        self.sent.append(value)
        self.acks[value] = asyncio.get_running_loop().create_future()
        return self.acks[value]


class Work:
    """How many images the member is at work on, the held ones included."""

    def __init__(self, images: int) -> None:
        self.images = images

    def others(self, held: int) -> bool:
        return self.images > held


async def test_a_result_goes_out_at_once_when_nothing_else_is_at_work():
    sender, work = ScriptedSender(), Work(images=1)
    sends = HeldSends(sender, hold_seconds=60, others_working=work.others)
    waiting = asyncio.ensure_future(sends.send("image.results", b"r", b"only"))
    await asyncio.sleep(0)
    assert sender.sent == [b"only"]
    assert not waiting.done()  # still waits for the broker
    sender.acks[b"only"].set_result("ack")
    assert await waiting == "ack"


async def test_results_wait_for_the_other_images_and_leave_together_with_the_last():
    sender, work = ScriptedSender(), Work(images=3)
    sends = HeldSends(sender, hold_seconds=60, others_working=work.others)
    first = asyncio.ensure_future(sends.send("image.results", b"r", b"one"))
    second = asyncio.ensure_future(sends.send("image.results", b"r", b"two"))
    await asyncio.sleep(0)
    assert sender.sent == []
    assert sends.held == 2
    third = asyncio.ensure_future(sends.send("image.results", b"r", b"three"))
    await asyncio.sleep(0)
    assert sender.sent == [b"one", b"two", b"three"]
    for value, ack in sender.acks.items():
        ack.set_result(value)
    assert await asyncio.gather(first, second, third) == [b"one", b"two", b"three"]


async def test_a_held_result_leaves_after_the_hold_even_while_others_work():
    sender, work = ScriptedSender(), Work(images=5)
    sends = HeldSends(sender, hold_seconds=0.02, others_working=work.others)
    waiting = asyncio.ensure_future(sends.send("image.results", b"r", b"slow"))

    async def sent() -> bool:
        return sender.sent == [b"slow"]

    assert await wait_until(sent, timeout=5, interval=0.01)
    sender.acks[b"slow"].set_result("ack")
    assert await waiting == "ack"


async def test_each_caller_gets_its_own_acknowledgement_or_error():
    sender, work = ScriptedSender(), Work(images=2)
    sends = HeldSends(sender, hold_seconds=60, others_working=work.others)
    good = asyncio.ensure_future(sends.send("image.results", b"r", b"good"))
    await asyncio.sleep(0)
    bad = asyncio.ensure_future(sends.send("image.results", b"r", b"bad"))
    await asyncio.sleep(0)
    sender.acks[b"good"].set_result("ack")
    sender.acks[b"bad"].set_exception(RuntimeError("broker said no"))
    assert await good == "ack"
    with pytest.raises(RuntimeError, match="broker said no"):
        await bad


async def test_no_more_than_max_held_wait_and_no_hold_means_no_waiting():
    sender, work = ScriptedSender(), Work(images=100)
    sends = HeldSends(sender, hold_seconds=60, others_working=work.others, max_held=3)
    for n in range(3):
        asyncio.ensure_future(sends.send("image.results", b"r", str(n).encode()))
    await asyncio.sleep(0)
    assert sender.sent == [b"0", b"1", b"2"]

    eager = HeldSends(sender, hold_seconds=0, others_working=work.others)
    asyncio.ensure_future(eager.send("image.results", b"r", b"eager"))
    await asyncio.sleep(0)
    assert sender.sent[-1] == b"eager"
