"""The consumer loop: bounded concurrent work, results acknowledged before offsets are committed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import structlog
from confluent_kafka import Message, TopicPartition
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer
from pipeline_runtime.netguard import AddressGuard
from pipeline_schemas import IMAGE_COMPRESSED, IMAGE_REQUESTED, ImageRequested, decode, encode

from .compression import CompressedImage, CompressionOptions, compress
from .config import Settings
from .downloader import AiohttpDownloader, DownloadLimits, create_session
from .handlers import Deps, handle_image_requested
from .offsets import OffsetTracker
from .retrying import RetryPolicy
from .storage import LocalImageStore

log = structlog.get_logger(__name__)


def make_pool(settings: Settings) -> Executor:
    if settings.pool == "thread":
        return ThreadPoolExecutor(max_workers=settings.pool_size, thread_name_prefix="pillow")
    return ProcessPoolExecutor(max_workers=settings.pool_size)


class Worker:
    """One member of the compressor consumer group."""

    def __init__(
        self, settings: Settings, consumer: AsyncConsumer, producer: AsyncProducer, deps: Deps
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._producer = producer
        self._deps = deps
        self._offsets = OffsetTracker()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._last_commit = 0.0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self._consumer.start()
        while not self._stopping.is_set():
            room = self._settings.max_in_flight - len(self._tasks)
            if room <= 0:
                await asyncio.wait(self._tasks, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
            else:
                for msg in await self._consumer.consume(room, timeout=0.2):
                    self._start(msg)
            await self._commit_if_due()
        await self._drain()

    def _start(self, msg: Message) -> None:
        self._offsets.started(msg.topic(), msg.partition(), msg.offset())
        task = asyncio.create_task(self._process(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, msg: Message) -> None:
        try:
            event = decode(IMAGE_REQUESTED.name, msg.value())
        except ValueError as exc:  # a poison message must not stall its partition
            log.error("message.undecodable", error=str(exc), partition=msg.partition(), offset=msg.offset())
        else:
            await self._handle(event)
        self._offsets.finished(msg.topic(), msg.partition(), msg.offset())

    async def _handle(self, event: ImageRequested) -> None:
        with structlog.contextvars.bound_contextvars(
            request_id=str(event.request_id), image_id=str(event.image_id)
        ):
            result = await handle_image_requested(event, self._deps)
            # The offset is committed only after the broker acknowledged the result.
            await self._producer.send(IMAGE_COMPRESSED.name, str(event.request_id).encode(), encode(result))

    async def _commit_if_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_commit < self._settings.commit_interval:
            return
        self._last_commit = now
        moved = self._offsets.to_commit()
        if not moved:
            return
        try:
            await self._consumer.commit([TopicPartition(t, p, o) for (t, p), o in moved.items()])
        except Exception as exc:  # noqa: BLE001 - e.g. partitions revoked; redelivery is safe
            log.warning("offsets.commit_failed", error=str(exc))

    async def _drain(self, timeout: float = 30.0) -> None:
        """On shutdown: finish in-flight work (bounded), then commit what finished."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        await self._commit_if_due(force=True)


async def run(settings: Settings) -> None:
    guard = AddressGuard.from_setting(settings.fetch_allowlist)
    limits = DownloadLimits(
        settings.connect_timeout, settings.total_timeout, settings.max_download_bytes, settings.max_redirects
    )
    pool = make_pool(settings)
    loop = asyncio.get_running_loop()

    async def compress_off_loop(data: bytes, options: CompressionOptions) -> CompressedImage:
        return await loop.run_in_executor(pool, compress, data, options)

    producer = AsyncProducer(settings.kafka.bootstrap_servers)
    consumer = AsyncConsumer(settings.kafka.bootstrap_servers, settings.group_id, [IMAGE_REQUESTED.name])
    async with create_session(guard, limits, max_connections=settings.max_in_flight * 2) as session:
        deps = Deps(
            downloader=AiohttpDownloader(session, guard, limits),
            compress=compress_off_loop,
            store=LocalImageStore(settings.media_dir, settings.media_base_url),
            retry=RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds),
            max_pixels=settings.max_pixels,
        )
        worker = Worker(settings, consumer, producer, deps)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        log.info(
            "compressor.started", group=settings.group_id, pool=settings.pool, pool_size=settings.pool_size
        )
        try:
            await worker.run()
        finally:
            with contextlib.suppress(Exception):
                await consumer.close()
            await asyncio.to_thread(producer.close)
            pool.shutdown(wait=True, cancel_futures=True)
    log.info("compressor.stopped")
