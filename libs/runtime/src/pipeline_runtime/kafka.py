"""confluent-kafka adapters for asyncio: a producer whose sends are awaitable, a consumer off the loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Longest wait of the consumer thread for a rebalance hook running on the event loop.
HOOK_TIMEOUT = 30.0
# How long an idle fetch waits at the broker before it is answered empty (librdkafka: 500 ms).
FETCH_WAIT_MS = 2000
# Longest sleep of a producer's delivery-report thread when nothing is delivered.
PRODUCER_POLL_SECONDS = 0.5
# librdkafka's RD_KAFKA_PARTITION_UA, produce()'s default: the partitioner chooses (by key).
ANY_PARTITION = -1


class KafkaSettings(BaseSettings):
    """Kafka connection, shared names for every service (KAFKA_*)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    replication_factor: int = Field(
        1, ge=1, description="Replicas of every topic the project creates (3 on a 3-broker cluster)."
    )
    min_insync_replicas: int = Field(
        1, ge=1, description="Replicas that must have a write before it is acknowledged (2 of 3)."
    )


class DeliveryFailed(Exception):
    """The broker did not acknowledge a produced message."""


class AsyncProducer:
    """An idempotent producer; `send` resolves once the broker has acknowledged the message.

    The classic Producer is used (not confluent_kafka.aio) because it reports deliveries as
    soon as they happen; a background thread polls it and resolves asyncio futures.
    """

    def __init__(self, bootstrap_servers: str, **config: Any) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                # acks=all is what idempotence implies; spelled out so no override can weaken it
                # silently: with min.insync.replicas a write survives the loss of its leader.
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                # no compression: events are small, and every reader (aiokafka in Faust too) can read them
                "compression.type": "none",
                "message.timeout.ms": 120_000,
                **config,
            }
        )
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll_forever(self) -> None:
        # poll() returns as soon as a delivery report is there; its timeout only bounds how long
        # close() waits for this thread, so an idle producer wakes twice a second, not ten times.
        while not self._stopping.is_set():
            self._producer.poll(PRODUCER_POLL_SECONDS)

    def send_nowait(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        *,
        partition: int | None = None,
    ) -> asyncio.Future[Message]:
        """Queue a message; the returned future resolves on the broker's acknowledgement.

        `partition` None lets the partitioner choose by key; a number sends it there.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, future, err, msg)

        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=ANY_PARTITION if partition is None else partition,
                    headers=list(headers),
                    on_delivery=on_delivery,
                )
                return future
            except BufferError:  # local queue full: let the poll thread drain it
                self._producer.poll(0.05)

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> Message:
        return await self.send_nowait(topic, key, value, headers)

    def has_broker(self, timeout: float = 2.0) -> bool:
        """Blocking metadata request: is at least one broker reachable?"""
        return bool(self._producer.list_topics(timeout=timeout).brokers)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout=2)


def _settle(future: asyncio.Future[Message], err: KafkaError | None, msg: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(DeliveryFailed(str(err)))
    else:
        future.set_result(msg)


RebalanceHook = Callable[[list[TopicPartition]], "list[TopicPartition] | None"]


class AsyncConsumer:
    """A manually committed group consumer whose blocking calls run on one dedicated thread.

    Optional rebalance hooks run on the event loop (the consumer thread waits for them), so they
    may touch the caller's state without locks. ``on_revoke`` may return offsets, which are
    committed before the partitions go to another member; ``on_lost`` is told of partitions
    taken away without a chance to commit (e.g. after a session timeout).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: list[str],
        *,
        on_assign: RebalanceHook | None = None,
        on_revoke: RebalanceHook | None = None,
        on_lost: RebalanceHook | None = None,
        **config: Any,
    ) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                # An idle consumer's fetch waits at the broker this long for data (long poll) and
                # returns as soon as any arrives (fetch.min.bytes 1), so a longer wait adds no
                # latency; it only spares the broker librdkafka's default of two empty fetches a
                # second per consumer. It bounds how long partitions newly assigned to a member
                # wait for the fetch already in flight.
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                **config,
            }
        )
        self._topics = topics
        self._hooks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"consumer-{group_id}")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._call(
            self._consumer.subscribe,
            self._topics,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )

    # The three callbacks below run on the consumer thread, inside consume() or close().

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Not calling (incremental_)assign here lets the client do it, as the protocol requires.
        self._run_hook("assign", partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        offsets = self._run_hook("revoke", partitions)
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                logger.warning("commit on revoke failed: %s", exc)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._run_hook("lost", partitions)

    def _run_hook(self, name: str, partitions: list[TopicPartition]) -> list[TopicPartition] | None:
        hook = self._hooks[name]
        loop = self._loop
        if hook is None or loop is None or loop.is_closed():
            return None

        async def on_loop() -> list[TopicPartition] | None:
            return hook(list(partitions))

        try:
            return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout=HOOK_TIMEOUT)
        except Exception:  # a hook must never kill the consumer thread
            logger.exception("rebalance hook %s failed", name)
            return None

    async def consume(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to `max_messages` messages, as soon as there is one; errors other than partition EOF raise."""
        messages = await self._call(self._consume_now, max_messages, timeout)
        good = []
        for msg in messages:
            err = msg.error()
            if err is None:
                good.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF and err.fatal():
                raise KafkaException(err)
        return good

    def _consume_now(self, max_messages: int, timeout: float) -> list[Message]:
        # confluent-kafka's consume(n, timeout) waits the whole timeout unless n messages arrive
        # (measured with 2.16.1: one waiting message came back after 0.50 s of consume(100, 0.5)),
        # which put a poll's wait on every idle hop. Waiting for one, then taking what is already
        # fetched with timeout 0, answers at once and still returns whole fetched batches.
        first = self._consumer.consume(1, timeout)
        if not first or max_messages <= 1:
            return first
        return first + self._consumer.consume(max_messages - 1, 0)

    async def lag(self) -> list[tuple[str, int, int, int]]:
        """(topic, partition, position, high watermark) of every assigned partition."""

        def read() -> list[tuple[str, int, int, int]]:
            assigned = self._consumer.assignment()
            if not assigned:
                return []
            positions = self._consumer.position(assigned)
            rows = []
            for tp in positions:
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                rows.append((tp.topic, tp.partition, tp.offset, high))
            return rows

        return await self._call(read)

    async def commit(self, offsets: list[TopicPartition]) -> None:
        if offsets:
            await self._call(self._consumer.commit, offsets=offsets, asynchronous=False)

    async def close(self) -> None:
        """Leave the group (revoking, so `on_revoke` commits what finished), then stop the thread."""
        await self._call(self._consumer.close)
        self._thread.shutdown(wait=True)


def position_of(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed message (only produced messages lack them)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without a topic, partition or offset")
    return topic, partition, offset


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit after every one of `messages` is processed: last + 1 per partition."""
    highest: dict[tuple[str, int], int] = {}
    for msg in messages:
        topic, partition, offset = position_of(msg)
        highest[topic, partition] = max(highest.get((topic, partition), -1), offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
