"""Names and URLs reach PostgreSQL exactly as uploaded through COPY's text format, escapes and all."""

from __future__ import annotations

import asyncpg
import pytest
from ingest.csv_validation import parse_upload
from ingest.repository import AsyncpgUploadRepository
from ingest.uploads import COPY_CHUNK_PRODUCTS, UploadOptions, plan_upload

from tests.integration.ingest.support import NOBODY, csv_bytes

pytestmark = pytest.mark.integration

AWKWARD_NAMES = ["tab\there", "back\\slash \\N \\.", "line\nbreak", "carriage\rreturn", "Café ☕ 𝄞", "\\"]


async def test_awkward_names_and_urls_are_stored_byte_for_byte(fresh_database_url):
    rows = [f'{n},"{name}",{NOBODY}/a\\b/{n}.jpg' for n, name in enumerate(AWKWARD_NAMES, 1)]
    data = csv_bytes(*rows)
    plan = plan_upload(parse_upload(data), data, UploadOptions())
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=1)
    try:
        await AsyncpgUploadRepository(pool).record(plan)
        stored = await pool.fetch(
            "SELECT p.product_name, i.input_url, i.image_id FROM products p JOIN images i USING (request_id, row_number)"
            " WHERE request_id = $1 ORDER BY row_number",
            plan.request_id,
        )
    finally:
        await pool.close()

    assert [r["product_name"] for r in stored] == AWKWARD_NAMES
    assert [r["input_url"] for r in stored] == [
        f"{NOBODY}/a\\b/{n}.jpg" for n in range(1, len(AWKWARD_NAMES) + 1)
    ]
    assert [str(r["image_id"]) for r in stored] == [row[0] for row in plan.image_rows()]


async def test_an_upload_of_several_chunks_stores_every_image_once_in_order(fresh_database_url):
    count = 2 * COPY_CHUNK_PRODUCTS + 7
    data = csv_bytes(*(f'{n},P{n},"{NOBODY}/{n}/0.jpg,{NOBODY}/{n}/1.jpg"' for n in range(1, count + 1)))
    plan = plan_upload(parse_upload(data), data, UploadOptions())
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=1)
    try:
        await AsyncpgUploadRepository(pool).record(plan)
        images = await pool.fetch(
            "SELECT image_id, serial_number, position, input_url FROM images WHERE request_id = $1"
            " ORDER BY row_number, position",
            plan.request_id,
        )
        products = await pool.fetchval("SELECT count(*) FROM products WHERE request_id = $1", plan.request_id)
    finally:
        await pool.close()

    assert products == count
    assert [(r["serial_number"], r["position"], r["input_url"]) for r in images] == [
        (n, k, f"{NOBODY}/{n}/{k}.jpg") for n in range(1, count + 1) for k in range(2)
    ]
    ids = [str(r["image_id"]) for r in images]
    assert ids == sorted(ids)  # UUIDv7 in input order
    assert len(set(ids)) == 2 * count
