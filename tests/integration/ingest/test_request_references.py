"""images and products refer to their request (db/migrations/0014), checked per statement, on the real server.

What the foreign keys guaranteed must still hold: no row for a missing request, a request's rows
go with it, a request id never changes, and a delete waits for an upload still being written.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from ingest.csv_validation import parse_upload
from ingest.repository import AsyncpgUploadRepository
from ingest.uploads import UploadOptions, UploadPlan, plan_upload

from tests.integration.ingest.support import NOBODY, csv_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(fresh_database_url) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=3)
    yield pool
    await pool.close()


def a_plan() -> UploadPlan:
    data = csv_bytes(f'1,Shirt,"{NOBODY}/r/1.jpg,{NOBODY}/r/2.jpg"', f"2,Hat,{NOBODY}/r/3.jpg")
    return plan_upload(parse_upload(data), data, UploadOptions())


async def rows_of(conn: asyncpg.Connection, request_id: uuid.UUID) -> tuple[int, int, int]:
    return (
        await conn.fetchval("SELECT count(*) FROM requests WHERE request_id = $1", request_id),
        await conn.fetchval("SELECT count(*) FROM products WHERE request_id = $1", request_id),
        await conn.fetchval("SELECT count(*) FROM images WHERE request_id = $1", request_id),
    )


async def test_an_upload_stores_its_request_products_and_images(pool):
    plan = a_plan()

    await AsyncpgUploadRepository(pool).record(plan)

    async with pool.acquire() as conn:
        assert await rows_of(conn, plan.request_id) == (1, 2, 3)


async def insert_one_image(conn: asyncpg.Connection, plan: UploadPlan) -> None:
    await conn.execute(
        "INSERT INTO images (image_id, request_id, row_number, serial_number, position, input_url)"
        " VALUES ($1, $2, 2, 1, 0, 'http://127.0.0.1:9/x.jpg')",
        uuid.uuid4(),
        plan.request_id,
    )


# Products and images by COPY (as an upload writes them), or one image alone by INSERT.
@pytest.mark.parametrize("write", [AsyncpgUploadRepository._copy_images, insert_one_image])
async def test_rows_for_a_missing_request_are_refused_and_nothing_is_stored(pool, write):
    plan = a_plan()  # its request row is never written

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await write(conn, plan)
        assert await rows_of(conn, plan.request_id) == (0, 0, 0)


async def test_one_statement_naming_an_existing_and_a_missing_request_is_refused(pool):
    plan = a_plan()
    await AsyncpgUploadRepository(pool).record(plan)

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO products (request_id, row_number, serial_number, product_name)"
                " VALUES ($1, 90, 90, 'kept'), ($2, 91, 91, 'orphan')",
                plan.request_id,
                uuid.uuid4(),
            )
        assert await rows_of(conn, plan.request_id) == (1, 2, 3)


async def test_deleting_a_request_deletes_its_products_and_images_only(pool):
    gone, kept = a_plan(), a_plan()
    repository = AsyncpgUploadRepository(pool)
    await repository.record(gone)
    await repository.record(kept)

    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM requests WHERE request_id = $1", gone.request_id)

        assert await rows_of(conn, gone.request_id) == (0, 0, 0)
        assert await rows_of(conn, kept.request_id) == (1, 2, 3)


@pytest.mark.parametrize("table", ["requests", "images", "products"])
async def test_a_request_id_never_changes(pool, table):
    plan = a_plan()
    await AsyncpgUploadRepository(pool).record(plan)

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(f"UPDATE {table} SET request_id = $1", uuid.uuid4())  # noqa: S608 - fixed names
        assert await rows_of(conn, plan.request_id) == (1, 2, 3)


async def test_truncating_requests_is_refused(pool):
    plan = a_plan()
    await AsyncpgUploadRepository(pool).record(plan)

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.FeatureNotSupportedError):
            await conn.execute("TRUNCATE requests CASCADE")
        assert await rows_of(conn, plan.request_id) == (1, 2, 3)


async def test_a_delete_waits_for_an_upload_being_written_then_removes_its_rows(pool):
    plan = a_plan()
    async with pool.acquire() as conn:
        await AsyncpgUploadRepository._insert_request(conn, plan)  # committed on its own
    async with pool.acquire() as writer, pool.acquire() as deleter:
        transaction = writer.transaction()
        await transaction.start()
        await AsyncpgUploadRepository._copy_images(writer, plan)  # not committed yet: the request is locked
        await deleter.execute("SET lock_timeout = '300ms'")
        with pytest.raises(asyncpg.LockNotAvailableError):
            await deleter.execute("DELETE FROM requests WHERE request_id = $1", plan.request_id)
        await transaction.commit()

        await deleter.execute("DELETE FROM requests WHERE request_id = $1", plan.request_id)

        assert await rows_of(deleter, plan.request_id) == (0, 0, 0)
