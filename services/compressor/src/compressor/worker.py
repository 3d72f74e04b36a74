"""The consumer loop: bounded concurrent work, results acknowledged before offsets are committed.

Retries never block a partition. A transient failure sends the next attempt back to
image.requested with a `not-before` header; when it comes round, it is parked in memory until
then while the messages behind it go on. A parked message's offset stays unfinished, so the
commit point waits for it and a crash replays it: nothing is lost, at the price of some
already-finished messages being redone (their outcomes are idempotent downstream).

Work is taken in refills: once the slots are full, the loop waits until a quarter of them are free
and consumes that many in one call, so each image does not cost a hand-over to the consumer's
thread and a wait over every task in flight of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from confluent_kafka import Message, TopicPartition
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer, DeliveryFailed, position_of
from pipeline_runtime.metrics import record_lag
from pipeline_schemas import IMAGE_REQUESTED, IMAGE_RESULTS, ImageRequested, decode, encode, key_of

from .config import Settings
from .handlers import Deps, Publish, Requeue, Wait, handle_image_requested
from .held_sends import HeldSends
from .offsets import OffsetTracker, PartitionOffsets
from .parking import DelayQueue
from .sources import CLAIMS_UNAVAILABLE

log = structlog.get_logger(__name__)

NOT_BEFORE_HEADER = "not-before"  # epoch milliseconds, ASCII: the attempt waits until then
RETRY_REASON_HEADER = "retry-reason"
REDELIVERY_DELAY = 1.0  # seconds before a message whose result could not be sent is tried again
IDLE_POLL = 0.2


def not_before_of(msg: Message) -> float | None:
    """The `not-before` header of a message, in epoch seconds, if it has a valid one."""
    headers = msg.headers() or []
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        if name == NOT_BEFORE_HEADER and value:
            with contextlib.suppress(ValueError):
                return int(value) / 1000
    return None


class Worker:
    """One member of the compressor consumer group."""

    def __init__(
        self,
        settings: Settings,
        consumer: AsyncConsumer,
        producer: AsyncProducer,
        deps: Deps,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._producer = producer
        self._deps = deps
        self._clock = clock
        self._offsets = OffsetTracker()
        self._parked: DelayQueue[PartitionOffsets, Message] = DelayQueue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refill = max(1, settings.max_in_flight // 4)
        self._room_for_refill = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_commit = 0.0
        self._results = HeldSends(producer, settings.result_hold_seconds, self._others_working)

    def _others_working(self, held: int) -> bool:
        return len(self._tasks) > held

    def stop(self) -> None:
        self._stopping.set()

    @property
    def parked(self) -> int:
        return len(self._parked)

    # --- rebalance hooks (run on the loop, called by AsyncConsumer) ---

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        log.info("partitions.assigned", partitions=[p.partition for p in partitions])

    def on_revoke(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Forget the partitions' state; answer the offsets to commit before they move on."""
        offsets = []
        for tp in partitions:
            offset = self._forget(tp)
            if offset is not None:
                offsets.append(TopicPartition(tp.topic, tp.partition, offset))
        log.info("partitions.revoked", partitions=[p.partition for p in partitions])
        return offsets

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._forget(tp)
        log.warning("partitions.lost", partitions=[p.partition for p in partitions])

    def _forget(self, tp: TopicPartition) -> int | None:
        part = self._offsets.current(tp.topic, tp.partition)
        if part is not None:
            self._parked.drop_owner(part)
        return self._offsets.release(tp.topic, tp.partition)

    # --- the loop ---

    async def run(self) -> None:
        await self._consumer.start()
        while not self._stopping.is_set():
            self._start_due()
            room = self._room()
            if room < self._refill or len(self._parked) >= self._settings.max_parked:
                await self._wait_for_progress()
            else:
                for msg in await self._consumer.consume(room, timeout=self._idle_timeout()):
                    self._accept(msg)
            await self._commit_if_due()
        await self._shutdown()

    def _idle_timeout(self) -> float:
        due = self._parked.next_due()
        if due is None:
            return IDLE_POLL
        return min(IDLE_POLL, max(0.0, due - self._clock()))

    def _room(self) -> int:
        return self._settings.max_in_flight - len(self._tasks)

    async def _wait_for_progress(self) -> None:
        """Until a refill's worth of slots is free, or a parked message may be due."""
        self._room_for_refill.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle_timeout()):
                await self._room_for_refill.wait()

    def _accept(self, msg: Message) -> None:
        part = self._offsets.started(*position_of(msg))
        due = not_before_of(msg)
        if due is not None and due > self._clock():
            self._parked.push(due, part, msg)
        else:
            self._spawn(part, msg)

    def _start_due(self) -> None:
        room = self._room()
        for part, msg in self._parked.pop_due(self._clock(), max(room, 0)):
            if self._offsets.owns(part):
                self._spawn(part, msg)

    def _spawn(self, part: PartitionOffsets, msg: Message) -> None:
        task = asyncio.create_task(self._process(part, msg))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._room() >= self._refill:
            self._room_for_refill.set()

    def _park(self, part: PartitionOffsets, msg: Message, seconds: float) -> None:
        if self._offsets.owns(part) and not self._stopping.is_set():
            self._parked.push(self._clock() + seconds, part, msg)

    async def _process(self, part: PartitionOffsets, msg: Message) -> None:
        try:
            event = decode(IMAGE_REQUESTED, msg.value() or b"")
        except ValueError as exc:  # a poison message must not stall its partition
            log.error("message.undecodable", error=str(exc), partition=msg.partition(), offset=msg.offset())
            part.finished(position_of(msg)[2])
            return
        with structlog.contextvars.bound_contextvars(
            request_id=str(event.request_id), image_id=str(event.image_id), attempt=event.attempt
        ):
            if await self._handle(event, part, msg):
                part.finished(position_of(msg)[2])

    async def _handle(self, event: ImageRequested, part: PartitionOffsets, msg: Message) -> bool:
        """Act on the handler's decision; True when the message is done with."""
        outcome = await handle_image_requested(event, self._deps)
        if isinstance(outcome, Wait):
            self._park(part, msg, outcome.seconds)
            return False
        try:
            # The offset is finished only after the broker acknowledged what we sent.
            if isinstance(outcome, Publish):
                result = outcome.result
                await self._results.send(IMAGE_RESULTS.name, IMAGE_RESULTS.key(result), encode(result))
            else:
                await self._requeue(outcome)
        except DeliveryFailed as exc:
            log.warning("result.not_delivered", error=str(exc))
            self._park(part, msg, REDELIVERY_DELAY)
            return False
        return True

    async def _requeue(self, outcome: Requeue) -> None:
        headers = [
            (NOT_BEFORE_HEADER, str(int(outcome.not_before * 1000)).encode()),
            (RETRY_REASON_HEADER, outcome.reason.encode()),
        ]
        event = outcome.event
        await self._producer.send(
            IMAGE_REQUESTED.name, key_of(IMAGE_REQUESTED.name, event), encode(event), headers
        )

    async def _sample_lag(self) -> None:
        try:
            record_lag("compressor", await self._consumer.lag())
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the work
            log.debug("lag.unavailable", error=str(exc))

    async def _commit_if_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_commit < self._settings.commit_interval:
            return
        self._last_commit = now
        await self._sample_lag()
        moved = self._offsets.to_commit()
        if not moved:
            return
        # Outcomes before offsets: a committed image's claim must be settled, or a copy of its URL
        # would wait for the lease to run out instead of reporting the outcome.
        await self._flush_claims()
        try:
            await self._consumer.commit([TopicPartition(t, p, o) for (t, p), o in moved.items()])
        except Exception as exc:  # noqa: BLE001 - e.g. partitions revoked; redelivery is safe
            log.warning("offsets.commit_failed", error=str(exc))

    async def _flush_claims(self) -> None:
        try:
            await self._deps.claims.flush()
        except CLAIMS_UNAVAILABLE as exc:
            log.warning("claims.unavailable", error=str(exc) or type(exc).__name__)

    async def _shutdown(self) -> None:
        """Finish in-flight work within the grace period; hand back the rest (left uncommitted)."""
        handed_back = self._parked.clear()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=self._settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            handed_back += len(pending)
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self._commit_if_due(force=True)
        log.info("compressor.drained", handed_back=handed_back)
