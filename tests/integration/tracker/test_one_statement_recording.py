"""record_image_results (db/migrations/0015) on the real PostgreSQL: one statement, the same rules.

A batch that finishes no request is one call of the function; one that finishes a request is
refused without may_finish (and leaves nothing behind), then recorded in a transaction that also
writes the completion. Replays, concurrent workers and cancelled requests keep their counts.
"""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import pytest
from pipeline_schemas import ImageCompressionFailed
from tracker.progress import Progress
from tracker.worker.repository import _RECORD, AsyncpgResultRecorder, result_columns

from .test_batch_recording import counters, failed, record_retrying
from .test_result_recorder import completions_for, done, new_request

pytestmark = pytest.mark.integration

CALL = _RECORD


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=2, max_size=8)
    yield pool
    await pool.close()


async def test_the_sql_status_rule_is_the_workers_progress_rule(pool):
    grid = [
        (total, processed, failed_, cancelled, cancelling)
        for total in range(4)
        for processed, failed_, cancelled in itertools.product(range(4), repeat=3)
        if processed + failed_ + cancelled <= total
        for cancelling in (False, True)
    ]
    rows = await pool.fetch(
        "SELECT request_progress_status(t, p, f, c, x) AS status"
        "  FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::bool[]) WITH ORDINALITY AS g(t, p, f, c, x, n)"
        " ORDER BY n",
        *(list(column) for column in zip(*grid, strict=True)),
    )
    statuses = [row["status"] for row in rows]
    assert statuses == [Progress(*case).status for case in grid]
    assert set(statuses) == {
        "pending",
        "processing",
        "completed",
        "completed_with_errors",
        "failed",
        "cancelled",
    }


async def test_a_batch_that_would_finish_a_request_is_refused_without_may_finish_and_leaves_nothing(pool):
    rid, ids = await new_request(pool, 2)
    batch = result_columns([done(rid, ids[0]), failed(rid, ids[1])])
    with pytest.raises(asyncpg.PostgresError) as refused:
        await pool.fetch(CALL, *batch, False)
    assert refused.value.sqlstate == "TB001"
    assert await counters(pool, rid) == (0, 0, "pending")
    assert (
        await pool.fetchval("SELECT count(*) FROM images WHERE request_id = $1 AND status = 'pending'", rid)
        == 2
    )
    assert await completions_for(pool, rid) == []


async def test_a_batch_finishing_nothing_is_one_call_that_counts_and_moves_the_status(pool):
    rid, ids = await new_request(pool, 3)
    rows = await pool.fetch(CALL, *result_columns([done(rid, ids[0]), failed(rid, ids[1])]), False)
    assert {row["image_id"] for row in rows} == {ids[0], ids[1]}
    assert all(row["request_id"] == rid and row["status"] is None for row in rows)
    assert await counters(pool, rid) == (1, 1, "processing")
    assert await pool.fetchval("SELECT completed_at FROM requests WHERE request_id = $1", rid) is None
    again = await pool.fetch(CALL, *result_columns([done(rid, ids[0]), failed(rid, ids[1])]), False)
    assert again == []  # replays: nothing counted, nothing returned


async def test_each_result_kind_stores_its_own_columns_and_leaves_the_others(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 3)
    await pool.execute("UPDATE images SET attempts = 2 WHERE image_id = $1", ids[0])
    late = ImageCompressionFailed(
        request_id=rid, image_id=ids[1], reason_code="timeout", message="slow", attempts=4
    )
    await repo.record_results([done(rid, ids[0]), late])
    rows = {
        r["image_id"]: r
        for r in await pool.fetch("SELECT * FROM images WHERE request_id = $1 AND status <> 'pending'", rid)
    }
    ok, bad = rows[ids[0]], rows[ids[1]]
    assert (ok["status"], ok["output_url"], ok["input_bytes"], ok["output_bytes"]) == (
        "done",
        "http://m/x.jpg",
        100,
        40,
    )
    assert (ok["error_code"], ok["error_message"], ok["attempts"]) == (None, None, 2)
    assert (bad["status"], bad["error_code"], bad["error_message"], bad["attempts"]) == (
        "failed",
        "timeout",
        "slow",
        4,
    )
    assert (bad["output_url"], bad["width"], bad["output_format"]) == (None, None, None)
    assert None not in (ok["finished_at"], bad["finished_at"])


async def test_a_cancelled_request_whose_last_admitted_image_is_recorded_completes_as_cancelled(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 3)
    await pool.execute("UPDATE images SET status = 'cancelled' WHERE image_id = $1", ids[2])
    await pool.execute(
        "UPDATE requests SET cancelled_images = 1, cancel_requested_at = now() WHERE request_id = $1", rid
    )
    await repo.record_results([done(rid, ids[0])])
    outcomes = await repo.record_results([failed(rid, ids[1])])
    assert outcomes[0].completed is not None
    assert (outcomes[0].completed.status, outcomes[0].completed.cancelled_images) == ("cancelled", 1)
    assert await counters(pool, rid) == (1, 1, "cancelled")
    (completion,) = await completions_for(pool, rid)
    assert (completion.status, completion.output_formats, completion.webhook_url) == (
        "cancelled",
        {"jpeg": 1},
        None,
    )


async def test_many_workers_recording_lone_results_and_replays_at_once_complete_once(pool):
    """Lone results, as an idle pipeline delivers them, from eight workers with replays."""
    repo = AsyncpgResultRecorder(pool, "http://t")
    requests = [await new_request(pool, 6) for _ in range(4)]
    events = [done(rid, i) if n % 3 else failed(rid, i) for rid, ids in requests for n, i in enumerate(ids)]
    lone = [[e] for e in events] + [[e] for e in events[::2]] + [events[3:9], events[::-1]]
    outcomes = await asyncio.gather(*(record_retrying(repo, batch) for batch in lone))
    assert sum(o.counted for batch in outcomes for o in batch) == 24
    assert sum(1 for batch in outcomes for o in batch if o.completed) == 4
    for rid, _ in requests:
        assert await counters(pool, rid) == (4, 2, "completed_with_errors")
        (completion,) = await completions_for(pool, rid)
        assert (completion.processed_images, completion.failed_images) == (4, 2)
        completed_at = await pool.fetchval("SELECT completed_at FROM requests WHERE request_id = $1", rid)
        assert completion.completed_at == completed_at


async def test_the_recorders_connections_plan_its_statement_once_and_record_through_it(fresh_database_url):
    from pipeline_runtime.database import create_db_pool, keep_session
    from tracker.worker.app import recorder_dsn

    recorder_pool = await create_db_pool(recorder_dsn(fresh_database_url), max_size=1, reset=keep_session)
    try:
        assert await recorder_pool.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        repo = AsyncpgResultRecorder(recorder_pool, "http://t")
        rid, ids = await new_request(recorder_pool, 12)
        for image_id in ids[:11]:  # past the five calls after which a plan is kept or not
            assert (await repo.record_results([done(rid, image_id)]))[0].counted
        (last,) = await repo.record_results([failed(rid, ids[11])])
        assert last.completed is not None
        assert await counters(recorder_pool, rid) == (11, 1, "completed_with_errors")
        assert len(await completions_for(recorder_pool, rid)) == 1
    finally:
        await recorder_pool.close()
