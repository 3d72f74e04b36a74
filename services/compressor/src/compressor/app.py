"""Assembling one compressor member from its settings, and running it until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import asyncpg
import structlog
from pipeline_runtime.database import create_db_pool, keep_session
from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer
from pipeline_runtime.metrics import serve_metrics
from pipeline_runtime.netguard import AddressGuard
from pipeline_schemas import IMAGE_REQUESTED

from .compression import CompressedImage, CompressionOptions, compress
from .config import Settings
from .downloader import AiohttpDownloader, DownloadLimits, create_session
from .handlers import Deps, TransientFailure
from .memory import BudgetedCompress, ByteBudget
from .retrying import RetryPolicy
from .sources import CLAIMS_UNAVAILABLE, NoClaims, PgSourceClaims, SourceClaims
from .storage import open_store
from .threadnames import name_os_thread
from .worker import Worker

log = structlog.get_logger(__name__)
PILLOW_THREAD_PREFIX = "pillow"  # the OS sees pillow_0, pillow_1, ... (threadnames)


def _quiet_worker() -> None:
    """Pool processes leave signals to their parent, which finishes or hands back their work.

    A SIGTERM sent to the whole process group (as devstack and most supervisors do) would
    otherwise kill the workers under the in-flight images the parent is still finishing.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> int:
    return os.getpid()


class PillowPool:
    """Runs `compress` off the event loop; a pool broken by a dying worker is replaced.

    Processes are spawned, not forked: a forked child would inherit the parent's threads' locks
    and its asyncio signal wake-up pipe (a signal to a child would then stop the parent).
    """

    def __init__(self, kind: str, size: int, work: Callable[..., CompressedImage] = compress) -> None:
        self._kind = kind
        self._size = size
        self._work = work
        self._executor = self._new()

    def _new(self) -> Executor:
        if self._kind == "thread":
            return ThreadPoolExecutor(
                max_workers=self._size, thread_name_prefix=PILLOW_THREAD_PREFIX, initializer=name_os_thread
            )
        return ProcessPoolExecutor(
            max_workers=self._size, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker
        )

    async def warm_up(self) -> None:
        """Start every worker now, not under the first images (nor while shutting down)."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _ready) for _ in range(self._size)))

    async def compress(self, data: bytes, options: CompressionOptions) -> CompressedImage:
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self._work, data, options)
        except BrokenProcessPool as exc:
            if executor is self._executor:
                log.error("pool.broken", error=str(exc))
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new()
            raise TransientFailure("worker_crashed", "the image worker process died") from exc

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@contextlib.asynccontextmanager
async def open_claims(settings: Settings) -> AsyncIterator[SourceClaims]:
    """URL claims in PostgreSQL when a database is configured; otherwise none."""
    if not (settings.dedupe and settings.database_url):
        log.warning("claims.disabled", reason="no DATABASE_URL" if settings.dedupe else "dedupe off")
        yield NoClaims()
        return
    pool = await claims_pool(settings.database_url)
    try:
        claims = PgSourceClaims(pool, settings.claim_lease_seconds)
        try:
            await claims.prepare(settings.claims_retention_days)
        except CLAIMS_UNAVAILABLE as exc:
            log.warning("claims.prepare_failed", error=str(exc))
        try:
            yield claims
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(claims.flush(), timeout=5)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), timeout=5)


async def claims_pool(dsn: str, max_size: int = 4) -> asyncpg.Pool:
    """Claims leave no session state: released without asyncpg's reset query (two per image)."""
    return await create_db_pool(dsn, max_size=max_size, command_timeout=10, reset=keep_session)


def download_limits(settings: Settings) -> DownloadLimits:
    return DownloadLimits(
        settings.connect_timeout, settings.total_timeout, settings.max_download_bytes, settings.max_redirects
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.max_attempts,
        settings.retry_base_seconds,
        settings.retry_max_seconds,
        settings.retry_after_max_seconds,
    )


async def run(settings: Settings) -> None:
    serve_metrics(settings.metrics_port)
    pool = PillowPool(settings.pool, settings.pool_size)
    producer = AsyncProducer(settings.kafka.bootstrap_servers)
    try:
        await pool.warm_up()
        await _with_resources(settings, pool, producer)
    finally:
        await asyncio.to_thread(producer.close)
        pool.shutdown()
    log.info("compressor.stopped")


async def _with_resources(settings: Settings, pool: PillowPool, producer: AsyncProducer) -> None:
    guard = AddressGuard.from_setting(settings.fetch_allowlist)
    limits = download_limits(settings)
    async with (
        open_claims(settings) as claims,
        open_store(settings.storage()) as store,
        create_session(guard, limits, max_connections=settings.max_in_flight * 2) as session,
    ):
        deps = Deps(
            downloader=AiohttpDownloader(session, guard, limits),
            compress=BudgetedCompress(
                pool.compress, ByteBudget(settings.max_inflight_bytes), settings.trim_after_bytes
            ),
            store=store,
            retry=retry_policy(settings),
            max_pixels=settings.max_pixels,
            media_secret=settings.media_secret(),
            claims=claims,
            max_restarts=settings.max_restarts,
            compress_timeout=settings.compress_timeout_seconds,
            auto_threshold=settings.auto_ssim_threshold,
        )
        await _serve(settings, producer, deps)


async def _serve(settings: Settings, producer: AsyncProducer, deps: Deps) -> None:
    # The hooks name `worker` before it exists; they only run once the consumer has started.
    consumer = AsyncConsumer(
        settings.kafka.bootstrap_servers,
        settings.group_id,
        [IMAGE_REQUESTED.name],
        on_assign=lambda parts: worker.on_assign(parts),
        on_revoke=lambda parts: worker.on_revoke(parts),
        on_lost=lambda parts: worker.on_lost(parts),
        **{"session.timeout.ms": settings.session_timeout_ms},
    )
    worker = Worker(settings, consumer, producer, deps)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    log.info(
        "compressor.started",
        group=settings.group_id,
        pool=settings.pool,
        pool_size=settings.pool_size,
        max_in_flight=settings.max_in_flight,
        max_inflight_bytes=settings.max_inflight_bytes,
        storage=settings.storage_url or f"file://{settings.media_dir}",
    )
    try:
        await worker.run()
    finally:
        with contextlib.suppress(Exception):
            await consumer.close()  # leaves the group; on_revoke commits what finished
