"""What the tracker API's routes need, typed as protocols, and the one factory that opens the real ones.

Progress streams poll PostgreSQL through a pool of their own (TRACKER_EVENTS_POOL_SIZE
connections), so however many streams are open, plain reads keep the connections of theirs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipeline_runtime.auth import Principal
from pipeline_runtime.database import database_reachable
from pipeline_runtime.httpkit import ResourceFactory, key_store, run_checks, serving_pool

from ..config import Settings
from .queries import AsyncpgProgressQueries, ProgressQueries

READ_POOL_SIZE = 10
STREAMS_APPLICATION_NAME = "tracker-api-streams"  # how the streams' connections show in pg_stat_activity


class KeyStore(Protocol):
    async def find(self, key: str) -> Principal | None: ...


@dataclass(frozen=True)
class Resources:
    """What the routes use; tests pass fakes through create_app(resources=...)."""

    queries: ProgressQueries  # plain reads: status, images, output CSV
    stream_queries: ProgressQueries  # the polls of progress streams, on connections of their own
    readiness: Callable[[], Awaitable[dict[str, bool]]]  # {"database": reachable?}
    key_store: KeyStore | None = None  # None: the app keeps NoKeys (every key is refused)


TrackerResources = ResourceFactory[Settings, Resources]


def with_application_name(dsn: str, name: str) -> str:
    """The DSN with `application_name` set (asyncpg passes it to the server as a setting)."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["application_name"] = name
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.asynccontextmanager
async def connect_database(settings: Settings) -> AsyncIterator[Resources]:
    """Both pools open no connection up front: the API starts, and answers 503, while PostgreSQL is down."""
    streams_dsn = with_application_name(settings.database_url, STREAMS_APPLICATION_NAME)
    async with (
        serving_pool(settings.database_url, max_size=READ_POOL_SIZE) as reads,
        serving_pool(streams_dsn, max_size=settings.events_pool_size) as streams,
        key_store(reads, settings.bootstrap_api_key) as keys,
    ):
        checks = {"database": lambda: database_reachable(reads)}
        yield Resources(
            AsyncpgProgressQueries(reads), AsyncpgProgressQueries(streams), lambda: run_checks(checks), keys
        )
