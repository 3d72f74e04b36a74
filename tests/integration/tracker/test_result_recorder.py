"""Recording results in the real PostgreSQL: exactly-once effects from at-least-once input."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from pipeline_schemas import REQUEST_COMPLETED, ImageCompressed, ImageCompressionFailed, decode
from tracker.worker.repository import AsyncpgResultRecorder

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(fresh_database_url):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=2, max_size=8)
    yield pool
    await pool.close()


async def new_request(pool: asyncpg.Pool, images: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    rid = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(images)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO requests (request_id, file_sha256, total_products, total_images) VALUES ($1, 'x', 1, $2)",
            rid,
            images,
        )
        await conn.execute(
            "INSERT INTO products (request_id, row_number, serial_number, product_name) VALUES ($1, 2, 1, 'p')",
            rid,
        )
        await conn.executemany(
            "INSERT INTO images (image_id, request_id, row_number, serial_number, position, input_url)"
            " VALUES ($1, $2, 2, 1, $3, 'http://a/b.jpg')",
            [(image_id, rid, n) for n, image_id in enumerate(ids)],
        )
    return rid, ids


def done(rid, image_id, output_format: str = "jpeg") -> ImageCompressed:
    return ImageCompressed(
        request_id=rid,
        image_id=image_id,
        output_url="http://m/x.jpg",
        input_bytes=100,
        output_bytes=40,
        width=10,
        height=10,
        format=output_format,  # type: ignore[arg-type]
    )


async def completions_for(pool: asyncpg.Pool, rid: uuid.UUID) -> list:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE topic = $1 AND key = $2", REQUEST_COMPLETED.name, str(rid).encode()
    )
    return [decode(REQUEST_COMPLETED.name, r["value"]) for r in rows]


async def test_replayed_results_are_counted_once(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 3)
    first = await repo.record_result(done(rid, ids[0]))
    replay = await repo.record_result(done(rid, ids[0]))
    assert (first.counted, replay.counted) == (True, False)
    row = await pool.fetchrow("SELECT processed_images, status FROM requests WHERE request_id = $1", rid)
    assert (row["processed_images"], row["status"]) == (1, "processing")


async def test_concurrent_results_and_duplicates_give_exact_counts_and_one_completion(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 40)
    events = [done(rid, i) for i in ids[:30]] + [
        ImageCompressionFailed(request_id=rid, image_id=i, reason_code="not_an_image", message="html")
        for i in ids[30:]
    ]
    results = await asyncio.gather(*(repo.record_result(e) for e in events + events[:15]))
    assert sum(r.counted for r in results) == 40
    assert sum(r.completed is not None for r in results) == 1
    row = await pool.fetchrow("SELECT * FROM requests WHERE request_id = $1", rid)
    assert (row["processed_images"], row["failed_images"], row["status"]) == (30, 10, "completed_with_errors")
    assert row["completed_at"] is not None
    completions = await completions_for(pool, rid)
    assert len(completions) == 1
    assert (completions[0].processed_images, completions[0].failed_images) == (30, 10)
    assert completions[0].output_formats == {"jpeg": 30}
    stored = await pool.fetchval(
        "SELECT count(*) FROM images WHERE request_id = $1 AND status <> 'pending'", rid
    )
    assert stored == 40


async def test_the_first_result_of_an_image_wins_over_a_later_contradicting_one(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 2)
    await repo.record_result(done(rid, ids[0]))
    late = ImageCompressionFailed(
        request_id=rid, image_id=ids[0], reason_code="timeout", message="late duplicate"
    )
    assert not (await repo.record_result(late)).counted
    image = await pool.fetchrow("SELECT status, error_code FROM images WHERE image_id = $1", ids[0])
    assert (image["status"], image["error_code"]) == ("done", None)


async def test_a_request_whose_every_image_failed_ends_failed(pool):
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 2)
    for image_id in ids:
        await repo.record_result(
            ImageCompressionFailed(request_id=rid, image_id=image_id, reason_code="http_error", message="404")
        )
    assert await pool.fetchval("SELECT status FROM requests WHERE request_id = $1", rid) == "failed"
    assert (await completions_for(pool, rid))[0].status == "failed"


async def test_the_completion_counts_the_stored_formats_a_kept_original_under_its_own(pool):
    """Issue 16: the webhook says which formats the request's images have; failures count in none."""
    repo = AsyncpgResultRecorder(pool, "http://t")
    rid, ids = await new_request(pool, 4)
    await repo.record_results(
        [
            done(rid, ids[0], "webp"),
            done(rid, ids[1], "jpeg"),  # a JPEG original kept because WebP would be larger
            done(rid, ids[2], "webp"),
            ImageCompressionFailed(request_id=rid, image_id=ids[3], reason_code="not_an_image", message="x"),
        ]
    )
    (completion,) = await completions_for(pool, rid)
    assert completion.output_formats == {"jpeg": 1, "webp": 2}
    assert completion.processed_images == 3
