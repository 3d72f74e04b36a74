"""POST /upload on the real PostgreSQL and Kafka: what an upload leaves in the database, row by row."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from ingest.admission_store import AsyncpgAdmissionStore
from ingest.csv_validation import parse_upload
from ingest.repository import AsyncpgUploadRepository
from ingest.scheduling import Admission
from ingest.uploads import UploadOptions, plan_upload
from pipeline_schemas import IMAGE_REQUESTED, decode

from tests.integration.ingest.support import HEADER, NOBODY, csv_bytes, running_ingest, upload

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def stored_images(db: asyncpg.Connection, request_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT i.image_id, row_number, i.serial_number, p.product_name, i.position, i.input_url"
        " FROM images i JOIN products p USING (request_id, row_number)"
        " WHERE request_id = $1 ORDER BY row_number, i.position",
        uuid.UUID(request_id),
    )


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    return await db.fetchval("SELECT count(*) FROM requests"), await db.fetchval(
        "SELECT count(*) FROM images"
    )


async def test_an_unquoted_row_with_three_urls_yields_three_images_in_order(ingest, db):
    urls = [f"{NOBODY}/unquoted/{n}.jpg" for n in range(3)]

    resp = await upload(ingest, csv_bytes(f"1,Shirt,{','.join(urls)}"))

    assert resp.status_code == 202, resp.text
    assert resp.json()["total_images"] == 3
    rows = await stored_images(db, resp.json()["request_id"])
    assert [(r["row_number"], r["serial_number"], r["product_name"]) for r in rows] == [(2, 1, "Shirt")] * 3
    assert [(r["position"], r["input_url"]) for r in rows] == list(enumerate(urls))


async def test_a_quoted_cell_and_unquoted_spill_yield_the_same_images(ingest, db):
    urls = [f"{NOBODY}/both/{n}.jpg" for n in range(3)]
    quoted = await upload(ingest, csv_bytes(f'1,Shirt,"{",".join(urls)}"'))
    unquoted = await upload(ingest, csv_bytes(f"1,Shirt,{','.join(urls)}"))

    stored = [await stored_images(db, r.json()["request_id"]) for r in (quoted, unquoted)]

    assert [[(r["position"], r["input_url"]) for r in rows] for rows in stored] == [list(enumerate(urls))] * 2


async def test_the_images_wait_queued_and_admission_writes_one_event_per_image(fresh_database_url, db):
    data = csv_bytes(f'1,A,"{NOBODY}/e/1.jpg,{NOBODY}/e/2.jpg"', f"2,B,{NOBODY}/e/3.jpg")
    plan = plan_upload(parse_upload(data), data, UploadOptions(quality=70))
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    scheduler = AsyncpgAdmissionStore(fresh_database_url)  # no relay runs here: the outbox keeps its rows
    try:
        await AsyncpgUploadRepository(pool).record(plan)
        queued_at_upload = await outbox_count(db, plan.request_id)
        assert await scheduler.lead()
        await scheduler.admit([Admission(plan.request_id, 3)])
    finally:
        await scheduler.resign()
        await pool.close()

    assert queued_at_upload == 0
    rows = await stored_images(db, str(plan.request_id))
    outbox = await db.fetch(
        "DELETE FROM outbox WHERE topic = $1 AND value LIKE $2 RETURNING key, value",
        IMAGE_REQUESTED.name,
        f'%"request_id":"{plan.request_id}"%'.encode(),
    )
    events = [decode(IMAGE_REQUESTED.name, r["value"]) for r in outbox]
    assert [r["input_url"] for r in rows] == [f"{NOBODY}/e/1.jpg", f"{NOBODY}/e/2.jpg", f"{NOBODY}/e/3.jpg"]
    assert sorted((str(e.image_id), e.input_url, e.quality) for e in events) == sorted(
        (str(r["image_id"]), r["input_url"], 70) for r in rows
    )
    assert sorted(r["key"].decode() for r in outbox) == sorted(str(r["image_id"]) for r in rows)


async def test_a_file_with_bom_and_crlf_line_ends_is_accepted_with_clean_names(ingest, db):
    data = b"\xef\xbb\xbf" + csv_bytes(
        f"1, Shirt ,{NOBODY}/bom/1.jpg", f"2,Hat,{NOBODY}/bom/2.jpg", newline="\r\n"
    )

    resp = await upload(ingest, data)

    assert resp.status_code == 202, resp.text
    rows = await stored_images(db, resp.json()["request_id"])
    assert [(r["row_number"], r["product_name"], r["input_url"]) for r in rows] == [
        (2, "Shirt", f"{NOBODY}/bom/1.jpg"),
        (3, "Hat", f"{NOBODY}/bom/2.jpg"),
    ]


async def test_header_variants_in_another_order_with_blank_lines_are_accepted(ingest, db):
    data = f"Input Image URLs,sr. no,PRODUCT NAME\n\n{NOBODY}/v/1.jpg,7,Lamp\n\n".encode()

    resp = await upload(ingest, data)

    assert resp.status_code == 202, resp.text
    [row] = await stored_images(db, resp.json()["request_id"])
    assert (row["row_number"], row["serial_number"], row["product_name"]) == (3, 7, "Lamp")


async def test_a_file_with_five_bad_rows_reports_all_five_with_line_numbers_and_stores_nothing(ingest, db):
    before = await counts(db)
    data = csv_bytes(
        f"1,Fine,{NOBODY}/f/1.jpg",
        f"two,Bad serial,{NOBODY}/f/2.jpg",
        f"3,,{NOBODY}/f/3.jpg",
        "4,No URL,",
        f"5,Fine,{NOBODY}/f/5.jpg",
        "6,Bad URL,ftp://127.0.0.1/f/6.jpg",
        f"7,Relative URL,/f/7.jpg,{NOBODY}/f/7b.jpg",
    )

    resp = await upload(ingest, data)

    assert resp.status_code == 422
    assert resp.headers["content-type"] == PROBLEM
    assert [(e["row"], e["column"]) for e in resp.json()["errors"]] == [
        (3, "S. No."),
        (4, "Product Name"),
        (5, "Input Image Urls"),
        (7, "Input Image Urls"),
        (8, "Input Image Urls"),
    ]
    assert await counts(db) == before


async def test_duplicate_serial_numbers_are_a_422_naming_both_rows(ingest, db):
    before = await counts(db)

    resp = await upload(
        ingest, csv_bytes(f"1,A,{NOBODY}/d/1.jpg", f"2,B,{NOBODY}/d/2.jpg", f"1,C,{NOBODY}/d/3.jpg")
    )

    assert resp.status_code == 422
    [error] = resp.json()["errors"]
    assert (error["row"], error["column"]) == (4, "S. No.")
    assert "row 2" in error["message"]
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("data", "row"),
    [(b"", 1), (f"{HEADER}\n".encode(), 1), (f"{HEADER},Colour\n1,A,{NOBODY}/x.jpg,red\n".encode(), 1)],
    ids=["empty", "header-only", "unknown-column"],
)
async def test_files_without_products_or_with_unknown_columns_are_422(ingest, db, data, row):
    before = await counts(db)

    resp = await upload(ingest, data)

    assert resp.status_code == 422
    assert resp.json()["errors"][0]["row"] == row
    assert await counts(db) == before


async def test_the_same_idempotency_key_twice_creates_one_request(ingest, db):
    key = f"idem-{uuid.uuid4()}"
    data = csv_bytes(f"1,A,{NOBODY}/i/1.jpg,{NOBODY}/i/2.jpg")

    first = await upload(ingest, data, headers={"Idempotency-Key": key})
    second = await upload(ingest, data, headers={"Idempotency-Key": key})

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["request_id"] == first.json()["request_id"]
    assert await db.fetchval("SELECT count(*) FROM requests WHERE idempotency_key = $1", key) == 1
    assert len(await stored_images(db, first.json()["request_id"])) == 2


async def test_the_same_idempotency_key_with_a_different_file_is_a_409(ingest, db):
    key = f"idem-{uuid.uuid4()}"
    await upload(ingest, csv_bytes(f"1,A,{NOBODY}/j/1.jpg"), headers={"Idempotency-Key": key})

    resp = await upload(ingest, csv_bytes(f"1,B,{NOBODY}/j/1.jpg"), headers={"Idempotency-Key": key})

    assert resp.status_code == 409
    assert resp.headers["content-type"] == PROBLEM
    assert await db.fetchval("SELECT count(*) FROM requests WHERE idempotency_key = $1", key) == 1


async def test_oversized_non_csv_and_missing_files_are_refused_before_anything_is_stored(
    fresh_database_url, bootstrap_servers, db
):
    before = await counts(db)
    async with running_ingest(fresh_database_url, bootstrap_servers, max_upload_bytes=2048) as client:
        too_large = await upload(client, csv_bytes(*[f"{n},P,{NOBODY}/l/{n}.jpg" for n in range(1, 200)]))
        not_csv = await client.post("/upload", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n\0", "image/png")})
        missing = await client.post("/upload", data={"quality": "60"})
        bad_quality = await upload(client, csv_bytes(f"1,A,{NOBODY}/q.jpg"), data={"quality": "96"})

    statuses = [r.status_code for r in (too_large, not_csv, missing, bad_quality)]
    assert statuses == [413, 415, 400, 422]
    assert {r.headers["content-type"] for r in (too_large, not_csv, missing, bad_quality)} == {PROBLEM}
    assert await counts(db) == before


async def test_the_quality_given_is_stored_with_the_request(ingest, db):
    resp = await upload(ingest, csv_bytes(f"1,A,{NOBODY}/q/1.jpg"), data={"quality": "80"})

    quality = await db.fetchval(
        "SELECT quality FROM requests WHERE request_id = $1", uuid.UUID(resp.json()["request_id"])
    )
    assert quality == 80


async def outbox_count(db, request_id) -> int:
    pattern = f'%"request_id":"{request_id}"%'.encode()
    return await db.fetchval("SELECT count(*) FROM outbox WHERE value LIKE $1", pattern)


class FailingAfterImages(AsyncpgUploadRepository):
    """Loses the database connection after the images are copied, before the commit."""

    @staticmethod
    async def _copy_images(conn, plan) -> None:
        await AsyncpgUploadRepository._copy_images(conn, plan)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_a_failure_midway_through_the_transaction_leaves_nothing_half_written(fresh_database_url, db):
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        data = csv_bytes(f"1,A,{NOBODY}/h/1.jpg,{NOBODY}/h/2.jpg")
        plan = plan_upload(parse_upload(data), data, UploadOptions())
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await FailingAfterImages(pool).record(plan)
    finally:
        await pool.close()

    assert await db.fetchval("SELECT count(*) FROM requests WHERE request_id = $1", plan.request_id) == 0
    assert await db.fetchval("SELECT count(*) FROM images WHERE request_id = $1", plan.request_id) == 0


async def test_two_concurrent_uploads_with_one_idempotency_key_create_one_request(ingest, db):
    key = f"race-{uuid.uuid4()}"
    data = csv_bytes(f"1,A,{NOBODY}/r/1.jpg")

    answers = await asyncio.gather(
        *[upload(ingest, data, headers={"Idempotency-Key": key}) for _ in range(4)]
    )

    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["request_id"] for a in answers}) == 1
    assert await db.fetchval("SELECT count(*) FROM requests WHERE idempotency_key = $1", key) == 1


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        (f"1,Long,{NOBODY}/{'x' * 2048}.jpg", "Input Image Urls", "2048"),
        ("1,No host,http:///x.jpg", "Input Image Urls", "host"),
        (f"1.5,Decimal,{NOBODY}/s.jpg", "S. No.", "integer"),
        (f"1,Bad scheme,{NOBODY}/ok.jpg,file:///etc/passwd", "Input Image Urls", "http"),
    ],
    ids=["url-too-long", "url-without-host", "serial-not-integer", "spilled-url-bad-scheme"],
)
async def test_each_bad_cell_is_a_422_naming_its_line_and_column(ingest, db, row, column, words):
    before = await counts(db)

    resp = await upload(ingest, csv_bytes(f"9,Fine,{NOBODY}/fine.jpg", row))

    [error] = resp.json()["errors"]
    assert (resp.status_code, error["row"], error["column"]) == (422, 3, column)
    assert words in error["message"]
    assert await counts(db) == before


async def test_more_rows_than_the_limit_is_a_422(fresh_database_url, bootstrap_servers, db):
    before = await counts(db)
    async with running_ingest(fresh_database_url, bootstrap_servers, max_rows=2) as client:
        resp = await upload(client, csv_bytes(*[f"{n},P{n},{NOBODY}/m/{n}.jpg" for n in range(1, 4)]))

    assert resp.status_code == 422
    assert "limit is 2" in resp.json()["errors"][-1]["message"]
    assert await counts(db) == before


async def test_a_long_product_name_is_stored_once_not_once_per_image(ingest, db):
    name = "N" * 1024  # the longest name accepted
    urls = [f"{NOBODY}/many/{n}.jpg" for n in range(100)]  # the most URLs a row may hold

    resp = await upload(ingest, csv_bytes(f'1,{name},"{",".join(urls)}"'))

    assert resp.status_code == 202, resp.text
    rid = uuid.UUID(resp.json()["request_id"])
    assert await db.fetchval("SELECT count(*) FROM images WHERE request_id = $1", rid) == 100
    products = await db.fetch("SELECT product_name FROM products WHERE request_id = $1", rid)
    assert [p["product_name"] for p in products] == [name]
    # Images keep no copy of the name: 100 images cost their URLs, not 100 × 1 KB of name.
    columns = await db.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'images'")
    assert "product_name" not in {c["column_name"] for c in columns}
