"""The fair-share ETA on the real PostgreSQL: remaining images over the request's own completion
rate in the recent window, null without completions, nothing for another tenant."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from tracker.api.models import RequestStatus
from tracker.api.queries import AsyncpgProgressQueries
from tracker.config import Settings
from tracker.eta import WINDOW_SECONDS

from tests.integration.tracker.test_status_api_on_postgres import pool, read_key, serving  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

TOTAL = 100
ADMITTED = 45
RECENT = 21  # finished 10 s, 9.5 s, ... 0 s before the insert: 20 intervals in 10 s, 2 images/s
OLD = 10  # finished long before the window: they count as processed, not in the rate


async def request_with_finished_images(db: asyncpg.Pool, tenant: str, *, recent: int, old: int) -> uuid.UUID:
    """A request of TOTAL images, ADMITTED admitted, `recent` + `old` of them done at known times."""
    rid = uuid.uuid4()
    finished = recent + old
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO requests (request_id, tenant_id, file_sha256, total_products, total_images,"
            " processed_images, admitted_images, status) VALUES ($1, $2, 'x', $3, $3, $4, $5, $6)",
            rid,
            tenant,
            TOTAL,
            finished,
            ADMITTED,
            "processing" if finished else "pending",
        )
        await conn.executemany(
            "INSERT INTO products (request_id, row_number, serial_number, product_name) VALUES ($1, $2, $3, 'p')",
            [(rid, n + 2, n + 1) for n in range(TOTAL)],
        )
        ages = [WINDOW_SECONDS * 3] * old + [(recent - 1 - k) * 0.5 for k in range(recent)]
        await conn.executemany(
            "INSERT INTO images (image_id, request_id, row_number, serial_number, position, input_url,"
            " status, finished_at) VALUES ($1, $2, $3, $4, 0, 'http://127.0.0.1:9/i.jpg', $5,"
            " CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $6::float8) END)",
            [
                (
                    uuid.uuid4(),
                    rid,
                    n + 2,
                    n + 1,
                    "done" if n < finished else "pending",
                    ages[n] if n < finished else None,
                )
                for n in range(TOTAL)
            ],
        )
    return rid


async def test_the_eta_is_the_remaining_images_over_the_recent_rate(pool):  # noqa: F811
    rid = await request_with_finished_images(pool, "acme", recent=RECENT, old=OLD)

    row = await AsyncpgProgressQueries(pool).request_status("acme", rid)

    assert row is not None
    assert row.recent_finished == RECENT  # the old completions are outside the window
    status = RequestStatus.of(row)
    remaining = TOTAL - RECENT - OLD  # 55 queued + 14 admitted, not finished
    assert status.queued_images == TOTAL - ADMITTED
    # 2 images/s, measured to the read a few milliseconds after the insert: about 34.5 s.
    assert status.eta_seconds == pytest.approx(remaining / 2.0, rel=0.05)


async def test_no_completions_in_the_window_means_no_eta(pool):  # noqa: F811
    fresh = await request_with_finished_images(pool, "acme", recent=0, old=0)
    stale = await request_with_finished_images(pool, "acme", recent=0, old=OLD)

    for rid in (fresh, stale):
        row = await AsyncpgProgressQueries(pool).request_status("acme", rid)
        assert row is not None
        assert RequestStatus.of(row).eta_seconds is None


async def test_the_api_serves_the_eta_to_its_tenant_only(pool, fresh_database_url, tmp_path):  # noqa: F811
    rid = await request_with_finished_images(pool, "acme", recent=RECENT, old=0)
    settings = Settings(database_url=fresh_database_url, media_dir=tmp_path / "media")

    async with serving(settings) as url, httpx.AsyncClient(timeout=10) as http:
        mine = await http.get(f"{url}/status/{rid}", headers=await read_key(pool, "acme"))
        theirs = await http.get(f"{url}/status/{rid}", headers=await read_key(pool, "globex"))

    assert mine.status_code == 200
    assert mine.json()["eta_seconds"] == pytest.approx((TOTAL - RECENT) / 2.0, rel=0.1)
    assert theirs.status_code == 404
    assert "eta_seconds" not in theirs.text
    assert await AsyncpgProgressQueries(pool).request_status("globex", rid) is None
