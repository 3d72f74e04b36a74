"""The Faust application factory of the tracker worker, with its PostgreSQL pool and outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import faust
import structlog
from pipeline_runtime.database import create_db_pool, keep_session
from pipeline_runtime.kafka import AsyncProducer
from pipeline_runtime.outbox import OutboxRelay
from pipeline_schemas import REQUEST_COMPLETED

from ..config import Settings
from .agents import Relay, register_agents
from .lean_consumer import LeanTransport
from .quiet_monitor import QuietMonitor
from .repository import AsyncpgResultRecorder, ResultRecorder

log = structlog.get_logger(__name__)


# The recorder's statement (repository.py) planned once per connection, not at every call: with
# the arrays as parameters PostgreSQL kept choosing a plan made for each call's values, and
# planning the statement cost more than running it (backend CPU per lone result 490-580 us
# against 200-280 us with the generic plan, which looks images and requests up by their keys
# whatever the batch size). Only the recorder's own connections get it.
RECORDER_SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


def recorder_dsn(dsn: str) -> str:
    """The DSN with the recorder's server settings (asyncpg passes unknown URI options to the server)."""
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), *RECORDER_SERVER_SETTINGS.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class WorkerDeps:
    """The agent's adapters, provided when the worker starts (never at import time)."""

    def __init__(self) -> None:
        self._recorder: ResultRecorder | None = None
        self._relay: Relay | None = None

    def provide(self, recorder: ResultRecorder, relay: Relay) -> None:
        self._recorder, self._relay = recorder, relay

    @property
    def recorder(self) -> ResultRecorder:
        if self._recorder is None:
            raise RuntimeError("the worker has not started: no result recorder yet")
        return self._recorder

    @property
    def relay(self) -> Relay:
        if self._relay is None:
            raise RuntimeError("the worker has not started: no outbox relay yet")
        return self._relay


class TrackerApp(faust.App):
    """A Faust app whose PostgreSQL pool and outbox relay live as long as the worker."""

    def __init__(self, settings: Settings, **options: Any) -> None:  # Faust's own keyword options
        super().__init__(settings.app_id, **options)
        self.settings = settings
        self.deps = WorkerDeps()
        self._tracker_pool: asyncpg.Pool | None = None
        self._tracker_record_pool: asyncpg.Pool | None = None
        self._tracker_producer: AsyncProducer | None = None
        self._tracker_relay_task: asyncio.Task[None] | None = None

    def _new_transport(self) -> Any:
        # Faust's kafka:// transport whose consumer thread does not poll 5 times a second when
        # idle (lean_consumer.py); the producer and what is fetched and committed are unchanged.
        return LeanTransport(self.conf.broker_consumer, self)

    async def on_start(self) -> None:
        await super().on_start()
        # Runs before the consumer and agents start, so the pool is ready for the first event.
        # The relay and its LISTEN connection on one pool; the recorder on a pool of its own that
        # skips asyncpg's reset query (a round trip per batch), which a LISTEN connection needs.
        self._tracker_pool = await create_db_pool(self.settings.database_url, max_size=3)
        self._tracker_record_pool = await create_db_pool(
            recorder_dsn(self.settings.database_url), max_size=2, reset=keep_session
        )
        self._tracker_producer = AsyncProducer(self.settings.kafka.bootstrap_servers)
        relay = OutboxRelay(
            self._tracker_pool,
            self._tracker_producer,
            [REQUEST_COMPLETED.name],
            batch_size=500,
            idle_seconds=self.settings.relay_idle_seconds,
            service="tracker",
        )
        recorder = AsyncpgResultRecorder(self._tracker_record_pool, self.settings.public_base_url)
        self.deps.provide(recorder, relay)
        self._tracker_relay_task = asyncio.create_task(relay.run(), name="completion-relay")

    async def on_stop(self) -> None:
        if self._tracker_relay_task:
            self._tracker_relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tracker_relay_task
        if self._tracker_producer:
            await asyncio.to_thread(self._tracker_producer.close)
        for pool in (self._tracker_pool, self._tracker_record_pool):
            if pool:
                await pool.close()
        await super().on_stop()


def create_faust_app(settings: Settings) -> TrackerApp:
    """The worker's app; building it connects to nothing (agents' test_context needs no broker)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = TrackerApp(
        settings,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        datadir=str(settings.data_dir),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_disable_leader=True,
        # Faust's own topics (table changelogs) get the replicas of every other topic; their
        # min.insync.replicas is the broker default, which the cluster sets (kafka.py of devstack).
        topic_replication_factor=settings.kafka.replication_factor,
        # Offsets are committed after the agent acknowledged a batch (after its transaction), at
        # most this often: one OffsetCommit per 3 s instead of per second. A crash repeats at most
        # that much work, which the recorder ignores (each image is counted once).
        broker_commit_interval=3.0,
        # A crashed worker's partitions move to the others after 10 s rather than Kafka's 45 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        # Faust's statistics sensor without per-event bookkeeping or its 1 s sampler: nothing here
        # reads them (quiet_monitor.py); acks and offsets do not pass through sensors.
        Monitor=QuietMonitor,
    )
    register_agents(app, app.deps)
    return app
