"""URL claims in the real PostgreSQL: one owner per (request, URL), leases, settled outcomes."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from compressor.app import claims_pool
from compressor.sources import Busy, Owned, PgSourceClaims, Settled
from compressor.storage import url_digest
from pipeline_schemas import ImageCompressed, ImageCompressionFailed

pytestmark = pytest.mark.integration

URL = "http://shop.test/same.jpg"


@pytest.fixture
async def pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def claims(pool) -> PgSourceClaims:
    claims = PgSourceClaims(pool, lease_seconds=30, poll_seconds=0.5)
    await claims.prepare(retention_days=7)
    return claims


def done(request_id, image_id) -> ImageCompressed:
    return ImageCompressed(
        request_id=request_id,
        image_id=image_id,
        output_url="http://media.test/x.jpg",
        input_bytes=100,
        output_bytes=40,
        width=8,
        height=6,
    )


async def test_one_owner_per_url_and_request_the_others_wait_then_get_its_outcome(claims):
    request, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    digest = url_digest(URL)
    assert await claims.claim(request, digest, first) == Owned()
    busy = await claims.claim(request, digest, second)
    assert isinstance(busy, Busy)
    assert 0 < busy.retry_in <= 0.5
    await claims.settle(request, digest, first, done(request, first))
    settled = await claims.claim(request, digest, second)
    assert isinstance(settled, Settled)
    assert settled.result.image_id == first
    assert settled.result.output_url == "http://media.test/x.jpg"


async def test_the_same_url_in_another_request_is_its_own_claim(claims):
    digest = url_digest(URL)
    assert await claims.claim(uuid.uuid4(), digest, uuid.uuid4()) == Owned()
    assert await claims.claim(uuid.uuid4(), digest, uuid.uuid4()) == Owned()


async def test_concurrent_claims_have_exactly_one_winner(claims):
    request, digest = uuid.uuid4(), url_digest(URL)
    answers = await asyncio.gather(*(claims.claim(request, digest, uuid.uuid4()) for _ in range(8)))
    assert sum(isinstance(a, Owned) for a in answers) == 1


async def test_the_owner_redelivered_takes_its_claim_back_at_once(claims):
    request, image, digest = uuid.uuid4(), uuid.uuid4(), url_digest(URL)
    assert await claims.claim(request, digest, image) == Owned(1)
    assert await claims.claim(request, digest, image) == Owned(2)


async def test_an_expired_lease_passes_to_the_next_slot(pool):
    short = PgSourceClaims(pool, lease_seconds=0.2)
    await short.prepare(retention_days=7)
    request, digest = uuid.uuid4(), url_digest(URL)
    assert await short.claim(request, digest, uuid.uuid4()) == Owned()
    await asyncio.sleep(0.3)
    assert await short.claim(request, digest, uuid.uuid4()) == Owned()


async def test_holding_a_claim_keeps_others_waiting_through_a_retry(pool):
    short = PgSourceClaims(pool, lease_seconds=0.2)
    await short.prepare(retention_days=7)
    request, owner, digest = uuid.uuid4(), uuid.uuid4(), url_digest(URL)
    assert await short.claim(request, digest, owner) == Owned()
    await short.hold(request, digest, owner, seconds=5)
    await asyncio.sleep(0.3)
    assert isinstance(await short.claim(request, digest, uuid.uuid4()), Busy)


async def test_a_failure_is_settled_too(claims):
    request, owner, digest = uuid.uuid4(), uuid.uuid4(), url_digest(URL)
    await claims.claim(request, digest, owner)
    failed = ImageCompressionFailed(
        request_id=request, image_id=owner, reason_code="not_an_image", message="HTML", attempts=1
    )
    await claims.settle(request, digest, owner, failed)
    answer = await claims.claim(request, digest, uuid.uuid4())
    assert isinstance(answer, Settled)
    assert answer.result.reason_code == "not_an_image"


async def test_starts_count_how_often_the_same_image_took_its_claim(claims):
    request, image, digest = uuid.uuid4(), uuid.uuid4(), url_digest(URL)
    assert [await claims.claim(request, digest, image) for _ in range(3)] == [Owned(1), Owned(2), Owned(3)]


async def test_the_claims_pool_sends_only_the_claims_statements_and_still_rolls_back(database_url):
    """No reset query per release (two round trips per image saved); an open transaction still ends."""
    pool = await claims_pool(database_url, max_size=1)
    try:
        seen: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query))
        claims = PgSourceClaims(pool, lease_seconds=30)
        request, image = uuid.uuid4(), uuid.uuid4()
        assert await claims.claim(request, url_digest(URL), image) == Owned()
        await claims.settle(request, url_digest(URL), image, done(request, image))
        assert [q.split()[0] for q in seen] == ["INSERT", "UPDATE"]

        async with pool.acquire() as conn:
            left_open = conn.transaction()
            await left_open.start()
            await conn.execute("SET LOCAL application_name = 'left-open'")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW application_name") != "left-open"
    finally:
        await pool.close()
