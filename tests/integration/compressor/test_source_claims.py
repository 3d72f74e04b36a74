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

from tests.support.servers import wait_until

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


def claims_sent(record) -> bool:
    """Everything the claims sent but asyncpg's own look-up of array types (once per connection)."""
    return not any(mark in record.query for mark in ("typeinfo_tree", "set_config('jit'"))


async def test_the_claims_pool_sends_only_the_claims_statements_and_still_rolls_back(database_url):
    """No reset query per release (two round trips per image saved); an open transaction still ends."""
    pool = await claims_pool(database_url, max_size=1)
    try:
        seen: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query) if claims_sent(record) else None)
        claims = PgSourceClaims(pool, lease_seconds=30)
        request, image = uuid.uuid4(), uuid.uuid4()
        assert await claims.claim(request, url_digest(URL), image) == Owned()
        await claims.settle(request, url_digest(URL), image, done(request, image))
        await claims.flush()
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


async def logged_claims(database_url, **options):
    pool = await claims_pool(database_url, max_size=1)
    seen: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(
            lambda record: seen.append(record.query.split()[0]) if claims_sent(record) else None
        )
    return pool, PgSourceClaims(pool, lease_seconds=30, **options), seen


async def test_claims_asked_in_the_same_turn_share_one_statement(database_url):
    """The images of one fetch start together: their claims are one INSERT, not one each."""
    pool, claims, seen = await logged_claims(database_url)
    try:
        request = uuid.uuid4()
        urls = [f"http://shop.test/{n}.jpg" for n in range(6)]
        answers = await asyncio.gather(*(claims.claim(request, url_digest(u), uuid.uuid4()) for u in urls))
        assert answers == [Owned(1)] * 6
        assert seen == ["INSERT"]
    finally:
        await pool.close()


async def test_copies_of_one_url_in_a_batch_have_one_owner_and_the_rest_wait(database_url):
    pool, claims, seen = await logged_claims(database_url)
    try:
        request, digest = uuid.uuid4(), url_digest(URL)
        other = url_digest("http://shop.test/other.jpg")
        answers = await asyncio.gather(
            claims.claim(request, digest, uuid.uuid4()),
            claims.claim(request, other, uuid.uuid4()),
            claims.claim(request, digest, uuid.uuid4()),
            claims.claim(request, digest, uuid.uuid4()),
        )
        assert answers[0] == Owned(1)
        assert answers[1] == Owned(1)
        assert all(isinstance(a, Busy) for a in answers[2:])
        assert seen[0] == "INSERT"  # the batch; the two copies are then asked one by one
    finally:
        await pool.close()


async def test_outcomes_are_written_behind_together_and_before_the_next_claims(database_url):
    pool, claims, seen = await logged_claims(database_url, settle_delay=30)
    try:
        request = uuid.uuid4()
        owners = {f"http://shop.test/{n}.jpg": uuid.uuid4() for n in range(3)}
        for url, owner in owners.items():
            assert await claims.claim(request, url_digest(url), owner) == Owned()
        for url, owner in owners.items():
            await claims.settle(request, url_digest(url), owner, done(request, owner))
        assert seen == ["INSERT"] * 3  # nothing written yet
        copy = await claims.claim(request, url_digest("http://shop.test/1.jpg"), uuid.uuid4())
        assert isinstance(copy, Settled)
        assert copy.result.image_id == owners["http://shop.test/1.jpg"]
        assert seen[3:5] == ["UPDATE", "INSERT"]  # the three outcomes in one statement, first
    finally:
        await pool.close()


async def test_an_outcome_is_stored_after_the_settle_delay_or_at_flush(database_url):
    pool, claims, _seen = await logged_claims(database_url, settle_delay=0.05)
    try:
        request, owner, digest = uuid.uuid4(), uuid.uuid4(), url_digest(URL)
        assert await claims.claim(request, digest, owner) == Owned()
        await claims.settle(request, digest, owner, done(request, owner))

        async def stored() -> bool:
            state = await pool.fetchval(
                "SELECT state FROM compressor_sources WHERE request_id = $1 AND url_sha256 = $2",
                request,
                digest,
            )
            return state == "settled"

        assert await wait_until(stored, timeout=5, interval=0.02)

        later, late_owner = uuid.uuid4(), uuid.uuid4()
        flushing = PgSourceClaims(pool, lease_seconds=30, settle_delay=60)
        assert await flushing.claim(later, digest, late_owner) == Owned()
        await flushing.settle(later, digest, late_owner, done(later, late_owner))
        await flushing.flush()
        assert (
            await pool.fetchval("SELECT state FROM compressor_sources WHERE request_id = $1", later)
            == "settled"
        )
    finally:
        await pool.close()


async def test_a_failed_batch_answers_each_of_its_claims_with_the_error_and_the_next_batch_works(
    database_url,
):
    pool, claims, _seen = await logged_claims(database_url)
    try:
        request = uuid.uuid4()
        answers = await asyncio.gather(
            claims.claim(request, url_digest("http://shop.test/a.jpg"), uuid.uuid4()),
            claims.claim(None, url_digest("http://shop.test/b.jpg"), uuid.uuid4()),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert all(isinstance(a, asyncpg.NotNullViolationError) for a in answers)
        assert await claims.claim(request, url_digest("http://shop.test/a.jpg"), uuid.uuid4()) == Owned()
    finally:
        await pool.close()
