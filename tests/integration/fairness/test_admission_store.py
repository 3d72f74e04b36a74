"""The scheduler's and cancel's PostgreSQL adapters on the real server: admission, leadership, cancel."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from ingest.admission_store import _NEXT_IMAGES, AsyncpgAdmissionStore
from ingest.control_store import AsyncpgControlStore
from ingest.csv_validation import parse_upload
from ingest.repository import AsyncpgUploadRepository
from ingest.scheduling import Admission
from ingest.uploads import UploadOptions, plan_upload
from pipeline_schemas import IMAGE_REQUESTED, REQUEST_COMPLETED, ImageCompressed, decode
from tracker.worker.repository import AsyncpgResultRecorder as AsyncpgProgressRepository

from tests.support.servers import wait_until

pytestmark = pytest.mark.integration
NOBODY = "http://127.0.0.1:9"


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
async def store(fresh_database_url):
    store = AsyncpgAdmissionStore(fresh_database_url)
    assert await store.lead()
    yield store
    await store.resign()


async def upload(pool, images: int, tenant: str = "a", priority: str = "normal", **options) -> uuid.UUID:
    rows = [f"{n},P{n},{NOBODY}/{uuid.uuid4().hex}/{n}.jpg" for n in range(1, images + 1)]
    data = ("S. No.,Product Name,Input Image Urls\n" + "\n".join(rows) + "\n").encode()
    chosen = UploadOptions(quality=61, tenant_id=tenant, priority=priority, **options)
    plan = plan_upload(parse_upload(data), data, chosen)
    await AsyncpgUploadRepository(pool).record(plan)
    return plan.request_id


async def take_events(pool, rid: uuid.UUID, topic: str = IMAGE_REQUESTED.name) -> list:
    rows = await pool.fetch(
        "DELETE FROM outbox WHERE topic = $1 AND value LIKE $2 RETURNING value",
        topic,
        f'%"request_id":"{rid}"%'.encode(),
    )
    return [decode(topic, r["value"]) for r in rows]


async def image_ids(pool, rid: uuid.UUID) -> list[uuid.UUID]:
    rows = await pool.fetch(
        "SELECT image_id FROM images WHERE request_id = $1 ORDER BY row_number, position", rid
    )
    return [r["image_id"] for r in rows]


def mine(snapshot, rid):
    return next(r for r in snapshot.requests if r.request_id == rid)


async def test_an_upload_waits_queued_and_admission_publishes_in_input_order_once(pool, store):
    rid = await upload(pool, 7, priority="high", format="webp", progressive=True)
    assert await take_events(pool, rid) == []  # nothing enters Kafka at upload any more

    before = mine(await store.snapshot(3.0), rid)
    first = await store.admit([Admission(rid, 3)])
    second = await store.admit([Admission(rid, 10)])  # only 4 are left
    third = await store.admit([Admission(rid, 5)])
    after = mine(await store.snapshot(3.0), rid)

    events = await take_events(pool, rid)
    ids = await image_ids(pool, rid)
    assert (before.queued, before.in_flight, before.priority, before.tenant_id) == (7, 0, "high", "a")
    assert (first, second, third) == (3, 4, 0)
    assert (after.queued, after.in_flight) == (0, 7)
    assert sorted(e.image_id for e in events) == sorted(ids)  # each image exactly once
    assert {(e.quality, e.tenant_id, e.attempt, e.format, e.progressive) for e in events} == {
        (61, "a", 1, "webp", True)
    }


async def test_one_scheduler_at_a_time_and_another_takes_over_when_it_goes(fresh_database_url, store):
    other = AsyncpgAdmissionStore(fresh_database_url)
    try:
        assert not await other.lead()
        with pytest.raises(RuntimeError):
            await other.admit([Admission(uuid.uuid4(), 1)])
        await store.resign()  # the holder's connection closes, as when its process is killed
        assert await wait_until(other.lead, timeout=5)
        assert not await store.lead()
    finally:
        await other.resign()


async def test_an_upload_committed_anywhere_wakes_the_leader_after_its_commit(pool, store):
    seen: list[int] = []

    async def queued_when_woken() -> None:
        snap = await store.snapshot(3.0)
        seen.append(sum(r.queued for r in snap.requests))

    woken = asyncio.Event()
    store.listen(woken.set)
    await upload(pool, 3)  # through the pool, as another ingest instance's upload would be

    await asyncio.wait_for(woken.wait(), timeout=10)
    await queued_when_woken()
    assert seen == [3]  # delivered at commit: the round it wakes sees the images


async def test_a_lost_connection_wakes_the_leader_and_its_next_statement_fails(pool, store):
    woken = asyncio.Event()
    store.listen(woken.set)
    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE $1",
        "imgpipe-scheduler %",
    )
    assert killed == 1
    await asyncio.wait_for(woken.wait(), timeout=10)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await store.snapshot(3.0)


async def test_throughput_is_read_from_completions_the_tracker_records(pool, store):
    rid = await upload(pool, 4)
    await store.admit([Admission(rid, 4)])
    tracker = AsyncpgProgressRepository(pool, "http://127.0.0.1:1")
    before = (await store.snapshot(60.0)).completed
    for image_id in (await image_ids(pool, rid))[:3]:
        event = done(rid, image_id)
        await tracker.record_result(event)
        await tracker.record_result(event)  # a replay, e.g. an image admitted twice after a crash
    snap = await store.snapshot(60.0)
    assert snap.completed - before == 3
    assert mine(snap, rid).in_flight == 1


def done(rid, image_id) -> ImageCompressed:
    return ImageCompressed(
        request_id=rid,
        tenant_id="a",
        image_id=image_id,
        output_url="http://127.0.0.1:1/o.jpg",
        input_bytes=10,
        output_bytes=5,
        width=1,
        height=1,
    )


async def test_cancel_stops_queued_images_and_the_last_in_flight_result_finishes_it_once(pool, store):
    rid = await upload(pool, 6, tenant="a")
    await store.admit([Admission(rid, 2)])
    control = AsyncpgControlStore(pool, "http://127.0.0.1:18001")

    outcome = await control.cancel(rid, "a")
    again = await control.cancel(rid, "a")
    assert await store.admit([Admission(rid, 4)]) == 0  # nothing of it is admitted any more
    assert mine(await store.snapshot(3.0), rid).queued == 0
    tracker = AsyncpgProgressRepository(pool, "http://127.0.0.1:18001")
    started = (await image_ids(pool, rid))[:2]
    first = await tracker.record_result(done(rid, started[0]))
    last = await tracker.record_result(done(rid, started[1]))

    assert (outcome.state, outcome.cancelled_images, outcome.in_flight) == ("cancelling", 4, 2)
    assert (again.state, again.cancelled_images, again.in_flight) == ("cancelling", 4, 2)
    assert first.completed is None
    assert last.completed is not None
    statuses = await pool.fetch("SELECT status FROM images WHERE request_id = $1 ORDER BY row_number", rid)
    assert [s["status"] for s in statuses] == ["done"] * 2 + ["cancelled"] * 4
    [event] = await take_events(pool, rid, REQUEST_COMPLETED.name)
    assert (event.status, event.processed_images, event.failed_images, event.cancelled_images) == (
        "cancelled",
        2,
        0,
        4,
    )
    assert (await control.cancel(rid, "a")).state == "finished"


async def test_cancel_with_nothing_in_flight_finishes_the_request_at_once(pool, store):
    rid = await upload(pool, 3, tenant="a")

    outcome = await control_of(pool).cancel(rid, "a")

    assert (outcome.state, outcome.cancelled_images) == ("cancelled", 3)
    row = await pool.fetchrow("SELECT status, completed_at FROM requests WHERE request_id = $1", rid)
    assert row["status"] == "cancelled"
    assert row["completed_at"] is not None
    [event] = await take_events(pool, rid, REQUEST_COMPLETED.name)
    assert (event.status, event.cancelled_images, event.total_images) == ("cancelled", 3, 3)


def control_of(pool) -> AsyncpgControlStore:
    return AsyncpgControlStore(pool, "http://127.0.0.1:18001")


async def test_another_tenants_cancel_changes_nothing(pool, store):
    rid = await upload(pool, 3, tenant="a")

    outcome = await control_of(pool).cancel(rid, "b")

    assert outcome.state == "not_found"
    row = await pool.fetchrow(
        "SELECT status, cancelled_images, cancel_requested_at FROM requests WHERE request_id = $1", rid
    )
    assert tuple(row) == ("pending", 0, None)
    assert mine(await store.snapshot(3.0), rid).queued == 3


async def test_weights_default_to_one_and_are_read_by_the_scheduler(pool, store):
    control = control_of(pool)
    await upload(pool, 1, tenant="heavy")
    assert await control.weight("heavy") == 1
    await control.set_weight("heavy", 3)
    await control.set_weight("heavy", 4)
    assert await control.weight("heavy") == 4
    assert (await store.snapshot(3.0)).weights.get("heavy") == 4


async def test_the_next_batch_is_an_index_range_scan_whatever_the_backlog(pool):
    rid = await upload(pool, 20_000)
    await pool.execute("ANALYZE images")

    plan = "\n".join(r["QUERY PLAN"] for r in await pool.fetch("EXPLAIN " + bound_next_images(rid)))

    assert "Index" in plan, plan
    assert "Seq Scan on images" not in plan, plan


def bound_next_images(rid: uuid.UUID) -> str:
    return (
        _NEXT_IMAGES.replace("$1::uuid[]", f"ARRAY['{rid}']::uuid[]")
        .replace("$2::int[]", "ARRAY[5000]")
        .replace("$3::int[]", "ARRAY[0]")
        .replace("$4::int[]", "ARRAY[100]")
    )


async def test_the_weights_command_sets_and_prints_a_weight(fresh_database_url, pool, capsys):
    from ingest.weights import parser, run

    assert (
        await run(parser().parse_args(["set", "cli-tenant", "7"]), fresh_database_url, "http://127.0.0.1:1")
        == 0
    )
    assert (
        await run(parser().parse_args(["get", "cli-tenant"]), fresh_database_url, "http://127.0.0.1:1") == 0
    )

    assert capsys.readouterr().out.splitlines() == ["cli-tenant\t7", "cli-tenant\t7"]
    assert await control_of(pool).weight("cli-tenant") == 7
