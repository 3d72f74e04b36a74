"""A poll's worth of results in one transaction on the real PostgreSQL: still each image counted once.

Duplicates inside one batch and across batches, several requests and both result kinds mixed.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pipeline_schemas import ImageCompressionFailed
from tracker.worker.repository import AsyncpgResultRecorder

from .test_result_recorder import completions_for, done, new_request

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=2, max_size=8)
    yield pool
    await pool.close()


def failed(rid, image_id, reason: str = "http_error") -> ImageCompressionFailed:
    return ImageCompressionFailed(request_id=rid, image_id=image_id, reason_code=reason, message="404")


async def counters(pool: asyncpg.Pool, rid) -> tuple:
    row = await pool.fetchrow(
        "SELECT processed_images, failed_images, status FROM requests WHERE request_id = $1", rid
    )
    return (row["processed_images"], row["failed_images"], row["status"])


async def test_duplicates_inside_one_batch_are_counted_once_and_the_first_wins(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 3)
    batch = [done(rid, ids[0]), done(rid, ids[0]), failed(rid, ids[0]), failed(rid, ids[1])]
    outcomes = await repo.record_results(batch)
    assert [o.counted for o in outcomes] == [True, False, False, True]
    assert not any(o.completed for o in outcomes)
    assert await counters(pool, rid) == (1, 1, "processing")
    image = await pool.fetchrow("SELECT status, error_code FROM images WHERE image_id = $1", ids[0])
    assert (image["status"], image["error_code"]) == ("done", None)


async def test_a_batch_finishing_a_request_emits_its_completion_once(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 4)
    other, other_ids = await new_request(pool, 2)
    batch = [done(rid, i) for i in ids[:3]] + [failed(rid, ids[3]), done(other, other_ids[0])]
    outcomes = await repo.record_results(batch + batch[:2])
    assert sum(o.counted for o in outcomes) == 5
    finished = [o.completed for o in outcomes if o.completed]
    assert [(c.request_id, c.status) for c in finished] == [(rid, "completed_with_errors")]
    assert await counters(pool, rid) == (3, 1, "completed_with_errors")
    assert await counters(pool, other) == (1, 0, "processing")
    assert len(await completions_for(pool, rid)) == 1
    assert await completions_for(pool, other) == []


async def test_what_each_image_got_is_stored_with_it(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 2)
    webp = done(rid, ids[0]).model_copy(update={"format": "webp", "quality": 61, "ssim": 0.985})
    await repo.record_results([webp, done(rid, ids[1])])
    rows = await pool.fetch(
        "SELECT image_id, output_format, output_quality, ssim FROM images WHERE request_id = $1", rid
    )
    got = {r["image_id"]: (r["output_format"], r["output_quality"], r["ssim"]) for r in rows}
    assert got[ids[0]][:2] == ("webp", 61)
    assert abs(got[ids[0]][2] - 0.985) < 1e-6
    assert got[ids[1]] == (done(rid, ids[1]).format, done(rid, ids[1]).quality, done(rid, ids[1]).ssim)


async def test_replays_across_batches_change_nothing_and_emit_nothing_again(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 3)
    first = [done(rid, i) for i in ids]
    assert sum(o.counted for o in await repo.record_results(first)) == 3
    replay = await repo.record_results(first[::-1] + [failed(rid, ids[0])])
    assert not any(o.counted or o.completed for o in replay)
    assert await counters(pool, rid) == (3, 0, "completed")
    assert len(await completions_for(pool, rid)) == 1


async def test_concurrent_overlapping_batches_give_exact_counts_and_one_completion(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    requests = [await new_request(pool, 20) for _ in range(3)]
    events = [done(rid, i) for rid, ids in requests for i in ids]
    # The same results in four batches of different shapes at once, as after a rebalance.
    shapes = [events, events[::-1], events[5:] + events[:5], events[::2] + events[1::2]]
    outcomes = await asyncio.gather(*(record_retrying(repo, batch) for batch in shapes))
    assert sum(o.counted for batch in outcomes for o in batch) == 60
    for rid, _ in requests:
        assert await counters(pool, rid) == (20, 0, "completed")
        assert len(await completions_for(pool, rid)) == 1
    assert sum(1 for batch in outcomes for o in batch if o.completed) == 3


async def record_retrying(repo: AsyncpgResultRecorder, batch, attempts: int = 10):
    """What the agent does: a transaction PostgreSQL aborted for a deadlock is run again."""
    for _ in range(attempts - 1):
        try:
            return await repo.record_results(batch)
        except asyncpg.DeadlockDetectedError:
            await asyncio.sleep(0.01)
    return await repo.record_results(batch)


async def test_the_recorders_pool_without_reset_queries_leaves_no_transaction_behind(fresh_database_url):
    """The worker records on a pool that skips asyncpg's reset query (one round trip per batch)."""
    from pipeline_runtime.database import create_db_pool, keep_session

    single = await create_db_pool(fresh_database_url, max_size=1, reset=keep_session)
    try:
        rid, ids = await new_request(single, 2)
        # A connection given back in the middle of a transaction (a batch cancelled mid-way).
        conn = await single.acquire()
        await conn.transaction().start()
        await conn.execute("UPDATE images SET status = 'done' WHERE request_id = $1", rid)
        await single.release(conn)

        async with single.acquire() as again:  # the same, only connection
            assert not again.is_in_transaction()
        assert await counters(single, rid) == (0, 0, "pending")  # the half-done batch left nothing

        repo = AsyncpgResultRecorder(single, "http://t")
        await repo.record_results([done(rid, ids[0]), done(rid, ids[1]), done(rid, ids[0])])
        await repo.record_results([done(rid, ids[1])])
        assert await counters(single, rid) == (2, 0, "completed")
        assert len(await completions_for(single, rid)) == 1
    finally:
        await single.close()
