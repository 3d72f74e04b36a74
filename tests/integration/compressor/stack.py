"""Running the test stack's compressor members with other settings, for end-to-end tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import asyncpg
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

MEMBERS = ("compressor-1", "compressor-2")
GROUP = "compressor"


def group_is_stable(bootstrap: str, members: int, group: str = GROUP) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        description = admin.describe_consumer_groups([group])[group].result(10)
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return False
    assigned = [tp for m in description.members for tp in m.assignment.topic_partitions]
    return (
        description.state == ConsumerGroupState.STABLE
        and len(description.members) == members
        and len(assigned) > 0
    )


def wait_for_group(bootstrap: str, members: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if group_is_stable(bootstrap, members):
            return
        time.sleep(0.3)
    raise TimeoutError(f"compressor group not stable with {members} members after {timeout}s")


def restart_members(profile, env: dict[str, str]) -> None:
    """Stop every member (SIGTERM, so each hands its work back) and start them with `env`."""
    from devstack import procs, services

    for name in MEMBERS:
        procs.stop(profile.run_dir, name, grace=15.0)
    for name in MEMBERS:
        services.start_one(profile, name, env)
    wait_for_group(profile.bootstrap_servers, len(MEMBERS))


@contextlib.contextmanager
def members_with(profile, env: dict[str, str]) -> Iterator[None]:
    """The compressor members run with `env` inside the block, as the pipeline started them after."""
    restart_members(profile, env)
    try:
        yield
    finally:
        restart_members(profile, {})


async def image_rows(database_url: str, request_id: str) -> list[asyncpg.Record]:
    """The request's images, in the order of the uploaded file."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT image_id, input_url, status, output_url, width, height, kept_original, error_code,"
            " error_message, attempts, input_bytes, output_bytes FROM images WHERE request_id = $1"
            " ORDER BY row_number, position",
            uuid.UUID(request_id),
        )
    finally:
        await conn.close()
    return rows


async def request_row(database_url: str, request_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT status, total_images, processed_images, failed_images, completed_at"
            " FROM requests WHERE request_id = $1",
            uuid.UUID(request_id),
        )
    finally:
        await conn.close()
