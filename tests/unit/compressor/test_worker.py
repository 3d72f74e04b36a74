"""The consumer loop with a fake consumer and producer: retries that do not block, revocation, SIGTERM."""

from __future__ import annotations

import ast
import asyncio
import time
import uuid
from dataclasses import dataclass, field

from compressor.compression import CompressedImage
from compressor.config import Settings
from compressor.downloader import DownloadError
from compressor.handlers import Deps
from compressor.retrying import RetryPolicy
from compressor.sources import Owned
from compressor.worker import NOT_BEFORE_HEADER, Worker, not_before_of
from confluent_kafka import TopicPartition
from pipeline_schemas import IMAGE_REQUESTED, IMAGE_RESULTS, ImageRequested, decode, encode

from tests.support.servers import wait_until

TOPIC = IMAGE_REQUESTED.name


@dataclass
class FakeMessage:
    _value: bytes
    _partition: int
    _offset: int
    _headers: list[tuple[str, bytes]] = field(default_factory=list)

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers


@dataclass
class FakeConsumer:
    queue: list[FakeMessage] = field(default_factory=list)
    commits: list[tuple[int, int]] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)  # max_messages of each consume that took some

    async def start(self) -> None:
        return None

    async def consume(self, max_messages: int, timeout: float) -> list[FakeMessage]:
        if self.queue:
            self.asked.append(max_messages)
        taken, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        if not taken:
            await asyncio.sleep(min(timeout, 0.02))
        return taken

    async def commit(self, offsets: list[TopicPartition]) -> None:
        self.commits += [(tp.partition, tp.offset) for tp in offsets]

    def committed(self, partition: int) -> int | None:
        mine = [o for p, o in self.commits if p == partition]
        return mine[-1] if mine else None


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes, list]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes, value: bytes, headers=()) -> None:
        self.sent.append((topic, value, list(headers)))

    def send_nowait(self, topic: str, key: bytes, value: bytes) -> asyncio.Future:
        self.sent.append((topic, value, []))
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    def results(self) -> list:
        return [decode(IMAGE_RESULTS, v) for t, v, _ in self.sent if t == IMAGE_RESULTS.name]


@dataclass
class ScriptedDownloader:
    """Fails the URLs listed in `fail` once (transient), blocks those in `hang` until released."""

    fail: set[str] = field(default_factory=set)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def fetch(self, url: str) -> bytes:
        if url in self.fail:
            self.fail.discard(url)
            raise DownloadError("server_error", "HTTP 503", transient=True)
        if url in self.hang:
            await self.release.wait()
        return url.encode()


class Store:
    async def save(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        return f"http://media.test/{key}"


async def passthrough(data, options) -> CompressedImage:
    return CompressedImage(data, 1, 1, "JPEG", kept_original=False)


def settings(**overrides) -> Settings:
    return Settings(commit_interval=0.0, max_in_flight=8, shutdown_grace_seconds=0.3, **overrides)


def make_worker(downloader, consumer, producer, claims=None, **overrides) -> Worker:
    deps = Deps(
        downloader=downloader,
        compress=passthrough,
        store=Store(),
        retry=RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.02),
        max_pixels=100,
        media_secret=b"worker-test-media-key-secret-0123456789",
        **({"claims": claims} if claims is not None else {}),
    )
    return Worker(settings(**overrides), consumer, producer, deps)  # type: ignore[arg-type]


def message(url: str, partition: int, offset: int, headers=None, request_id=None) -> FakeMessage:
    event = ImageRequested(request_id=request_id or uuid.uuid4(), image_id=uuid.uuid4(), input_url=url)
    return FakeMessage(encode(event), partition, offset, headers or [])


async def test_a_parked_retry_does_not_block_the_messages_behind_it():
    consumer, producer = FakeConsumer(), FakeProducer()
    later = str(int((time.time() + 0.5) * 1000)).encode()
    consumer.queue = [
        message("http://h/parked", 0, 10, headers=[(NOT_BEFORE_HEADER, later)]),
        message("http://h/next", 0, 11),
    ]
    worker = make_worker(ScriptedDownloader(), consumer, producer)
    running = asyncio.create_task(worker.run())

    async def next_done_first() -> bool:
        return len(producer.results()) == 1

    assert await wait_until(next_done_first, timeout=5, interval=0.01)
    assert producer.results()[0].output_url.startswith("http://media.test/")
    assert worker.parked == 1
    assert consumer.committed(0) in (None, 10)  # never past the parked message

    async def all_done() -> bool:
        return len(producer.results()) == 2 and consumer.committed(0) == 12

    assert await wait_until(all_done, timeout=5, interval=0.02)
    worker.stop()
    await asyncio.wait_for(running, 5)


async def test_a_transient_failure_is_sent_back_with_the_next_attempt_and_a_not_before_header():
    consumer, producer = FakeConsumer(), FakeProducer()
    consumer.queue = [message("http://h/flaky", 2, 0)]
    worker = make_worker(ScriptedDownloader(fail={"http://h/flaky"}), consumer, producer)
    running = asyncio.create_task(worker.run())

    async def requeued() -> bool:
        return any(t == TOPIC for t, _, _ in producer.sent) and consumer.committed(2) == 1

    assert await wait_until(requeued, timeout=5, interval=0.02)
    worker.stop()
    await asyncio.wait_for(running, 5)
    topic, value, headers = producer.sent[0]
    again = decode(TOPIC, value)
    assert again.attempt == 2
    header = dict(headers)
    assert int(header[NOT_BEFORE_HEADER]) > 0
    assert header["retry-reason"] == b"server_error"
    assert producer.results() == []  # no result yet: the retry will give it


async def test_revoking_a_partition_forgets_its_parked_messages_and_answers_its_offset():
    consumer, producer = FakeConsumer(), FakeProducer()
    much_later = str(int((time.time() + 60) * 1000)).encode()
    consumer.queue = [
        message("http://h/a", 1, 4),
        message("http://h/b", 1, 5, headers=[(NOT_BEFORE_HEADER, much_later)]),
    ]
    worker = make_worker(ScriptedDownloader(), consumer, producer)
    running = asyncio.create_task(worker.run())

    async def first_done() -> bool:
        return len(producer.results()) == 1 and worker.parked == 1

    assert await wait_until(first_done, timeout=5, interval=0.01)
    offsets = worker.on_revoke([TopicPartition(TOPIC, 1)])
    assert [(tp.partition, tp.offset) for tp in offsets] in ([(1, 5)], [])  # [] if already committed
    assert worker.parked == 0
    worker.stop()
    await asyncio.wait_for(running, 5)


async def test_on_sigterm_finished_work_is_committed_and_stuck_work_is_handed_back():
    consumer, producer = FakeConsumer(), FakeProducer()
    consumer.queue = [message("http://h/quick", 0, 0), message("http://h/stuck", 0, 1)]
    downloader = ScriptedDownloader(hang={"http://h/stuck"})
    worker = make_worker(downloader, consumer, producer)
    running = asyncio.create_task(worker.run())

    async def quick_done() -> bool:
        return len(producer.results()) == 1

    assert await wait_until(quick_done, timeout=5, interval=0.01)
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert consumer.committed(0) == 1  # the stuck message (offset 1) is redelivered to the next owner
    assert len(producer.results()) == 1


@dataclass
class GatedDownloader:
    """Each URL's download waits until its own gate is opened."""

    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    async def fetch(self, url: str) -> bytes:
        await self.gates.setdefault(url, asyncio.Event()).wait()
        return url.encode()


async def test_full_slots_are_refilled_a_quarter_at_a_time_not_one_consume_per_finished_image():
    consumer, producer = FakeConsumer(), FakeProducer()
    consumer.queue = [message(f"http://h/{n}", 0, n) for n in range(20)]
    downloader = GatedDownloader()
    worker = make_worker(downloader, consumer, producer)  # 8 in flight: refills of 2
    running = asyncio.create_task(worker.run())

    async def slots_full() -> bool:
        return len(downloader.gates) == 8

    assert await wait_until(slots_full, timeout=5, interval=0.01)
    downloader.gates["http://h/0"].set()

    async def one_done() -> bool:
        return len(producer.results()) == 1

    assert await wait_until(one_done, timeout=5, interval=0.01)
    await asyncio.sleep(0.3)  # longer than an idle wake-up: one free slot is still not consumed into
    assert (consumer.asked, len(consumer.queue)) == ([8], 12)

    downloader.gates["http://h/1"].set()

    async def refilled() -> bool:
        return len(downloader.gates) == 10

    assert await wait_until(refilled, timeout=5, interval=0.01)
    assert consumer.asked == [8, 2]
    for n in range(20):
        downloader.gates.setdefault(f"http://h/{n}", asyncio.Event()).set()

    async def all_committed() -> bool:
        return consumer.committed(0) == 20

    assert await wait_until(all_committed, timeout=5, interval=0.01)
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert len(producer.results()) == 20


@dataclass
class WrittenBehindClaims:
    """Claims whose outcomes are only stored by flush(), logging what happened when."""

    log: list[str]
    held: list[str] = field(default_factory=list)

    async def claim(self, request_id, digest, image_id):
        return Owned()

    async def hold(self, request_id, digest, image_id, seconds):
        return None

    async def settle(self, request_id, digest, image_id, result):
        self.held.append(str(image_id))

    async def flush(self):
        if self.held:
            self.log.append(f"stored {len(self.held)}")
            self.held.clear()


@dataclass
class LoggingConsumer(FakeConsumer):
    log: list[str] = field(default_factory=list)

    async def commit(self, offsets: list[TopicPartition]) -> None:
        self.log.append(f"commit {[(tp.partition, tp.offset) for tp in offsets]}")
        await super().commit(offsets)


async def test_outcomes_written_behind_are_stored_before_their_offsets_are_committed():
    consumer, producer = LoggingConsumer(), FakeProducer()
    claims = WrittenBehindClaims(consumer.log)
    consumer.queue = [message("http://h/a", 0, 0), message("http://h/b", 0, 1)]
    worker = make_worker(ScriptedDownloader(), consumer, producer, claims=claims)
    running = asyncio.create_task(worker.run())

    async def committed() -> bool:
        return consumer.committed(0) == 2

    assert await wait_until(committed, timeout=5, interval=0.01)
    worker.stop()
    await asyncio.wait_for(running, 5)
    # Each commit of offset n (images 0 .. n-1 done) comes after n outcomes were stored.
    stored = 0
    for line in consumer.log:
        if line.startswith("stored"):
            stored += int(line.split()[1])
        else:
            assert line.startswith("commit")
            assert all(offset <= stored for _, offset in ast.literal_eval(line.removeprefix("commit ")))
    assert stored == 2


def test_not_before_header_is_read_in_seconds_and_junk_is_ignored():
    assert not_before_of(FakeMessage(b"", 0, 0, [(NOT_BEFORE_HEADER, b"1500")])) == 1.5
    assert not_before_of(FakeMessage(b"", 0, 0, [(NOT_BEFORE_HEADER, b"soon")])) is None
    assert not_before_of(FakeMessage(b"", 0, 0)) is None
