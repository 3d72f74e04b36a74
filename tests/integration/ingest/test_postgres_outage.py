"""PostgreSQL down at upload time: 503 problem+json, nothing recorded, and ingest recovers by itself.

In a module of its own: stopping the server disturbs every client of the test stack for a moment.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.integration.ingest.support import NOBODY, csv_bytes, running_ingest, upload

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_control(infrastructure):
    """Stop and start the test stack's PostgreSQL; it is always running again after the test."""
    from devstack import postgres

    if infrastructure.external_database:
        pytest.skip("PostgreSQL is external (DATABASE_URL): this test cannot stop it")
    try:
        yield postgres
    finally:
        postgres.start(infrastructure)


async def test_an_upload_while_postgres_is_down_is_a_503_problem_and_writes_nothing(
    infrastructure, postgres_control, fresh_database_url, bootstrap_servers
):
    key = f"pg-down-{uuid.uuid4()}"
    data = csv_bytes(f"1,Shirt,{NOBODY}/pg/1.jpg,{NOBODY}/pg/2.jpg", f"2,Hat,{NOBODY}/pg/3.jpg")
    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        assert (await ingest.get("/readyz")).status_code == 200
        await asyncio.to_thread(postgres_control.stop, infrastructure)

        refused = await upload(ingest, data, headers={"Idempotency-Key": key})
        not_ready = await ingest.get("/readyz")
        alive = await ingest.get("/healthz")

        await asyncio.to_thread(postgres_control.start, infrastructure)  # runs its own event loop
        conn = await asyncpg.connect(fresh_database_url)
        try:
            leftovers = await conn.fetchval(
                "SELECT (SELECT count(*) FROM requests WHERE idempotency_key = $1)"
                " + (SELECT count(*) FROM images WHERE input_url LIKE $2)",
                key,
                f"{NOBODY}/pg/%",
            )
        finally:
            await conn.close()
        retried = await upload(ingest, data, headers={"Idempotency-Key": key})

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 503
    assert not_ready.status_code == 503
    assert "database" in not_ready.json()["detail"]
    assert alive.status_code == 200
    assert leftovers == 0
    assert retried.status_code == 202
    assert retried.json()["total_images"] == 3
