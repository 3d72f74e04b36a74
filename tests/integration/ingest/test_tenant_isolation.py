"""Every write route of ingest, called by another tenant, changes nothing of a tenant's rows.

On the real PostgreSQL: a snapshot of tenant acme's requests, images and keys is taken before
tenant rival's calls and compared after them.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.integration.ingest.support import NOBODY, bearer, csv_bytes, running_ingest, upload
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

FILE = csv_bytes(f"1,Shirt,{NOBODY}/iso/a.jpg", f"2,Shoe,{NOBODY}/iso/b.jpg")


async def snapshot(db: asyncpg.Connection, tenant: str) -> dict[str, list[tuple]]:
    """Everything of `tenant` a write route could touch, in a fixed order.

    Outbox rows are left out: the relay publishes and deletes them at any moment. A new event for
    one of our images would need a new image row, which `images` would show.
    """
    requests = await db.fetch("SELECT * FROM requests WHERE tenant_id = $1 ORDER BY request_id", tenant)
    images = await db.fetch(
        "SELECT i.* FROM images i JOIN requests r USING (request_id) WHERE r.tenant_id = $1"
        " ORDER BY i.image_id",
        tenant,
    )
    keys = await db.fetch("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY key_id", tenant)
    return {
        name: [tuple(row.values()) for row in rows]
        for name, rows in (("requests", requests), ("images", images), ("keys", keys))
    }


async def settled(db: asyncpg.Connection) -> bool:
    """The scheduler has admitted every image and the relay has published it: nothing moves on its own."""
    waiting = await db.fetchval("SELECT count(*) FROM requests WHERE admitted_images < total_images")
    return waiting == 0 and await db.fetchval("SELECT count(*) FROM outbox") == 0


async def make_key(ingest: httpx.AsyncClient, tenant: str, *scopes: str) -> tuple[str, str]:
    resp = await ingest.post("/keys", json={"tenant_id": tenant, "scopes": list(scopes)})
    assert resp.status_code == 201, resp.text
    return resp.json()["key_id"], resp.json()["key"]


@pytest.fixture
async def world(fresh_database_url, bootstrap_servers):
    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        db = await asyncpg.connect(fresh_database_url)
        try:
            acme_key_id, acme = await make_key(ingest, "acme", "upload", "admin")
            _, rival = await make_key(ingest, "rival", "upload", "admin")
            order = f"order-{acme_key_id}"  # the module's database is shared by its tests
            first = await upload(ingest, FILE, headers={**bearer(acme), "Idempotency-Key": order})
            assert first.status_code == 202, first.text
            assert await wait_until(lambda: settled(db), timeout=10)
            yield ingest, db, (acme_key_id, acme), rival, (first.json()["request_id"], order)
        finally:
            await db.close()


async def test_another_tenants_upload_with_the_same_idempotency_key_touches_nothing_of_ours(world):
    ingest, db, _, rival, (ours, order) = world
    _, third = await make_key(ingest, "third", "upload")
    before = await snapshot(db, "acme")

    other_file = await upload(
        ingest, csv_bytes(f"1,Hat,{NOBODY}/iso/c.jpg"), headers={**bearer(rival), "Idempotency-Key": order}
    )
    same_file = await upload(ingest, FILE, headers={**bearer(third), "Idempotency-Key": order})

    assert await snapshot(db, "acme") == before
    assert other_file.status_code == 202, other_file.text  # not 409: that would tell rival our key exists
    assert same_file.status_code == 202, same_file.text  # its own request: the key is per tenant
    assert same_file.json()["request_id"] != ours
    assert other_file.json()["request_id"] not in (ours, same_file.json()["request_id"])


async def test_another_tenants_admin_cannot_create_or_revoke_our_keys(world):
    ingest, db, (our_key_id, acme), rival, _ = world
    before = await snapshot(db, "acme")

    created = await ingest.post(
        "/keys", json={"tenant_id": "acme", "scopes": ["upload"]}, headers=bearer(rival)
    )
    revoked = await ingest.delete(f"/keys/{our_key_id}", headers=bearer(rival))
    listed = await ingest.get("/keys", params={"tenant_id": "acme"}, headers=bearer(rival))
    still_ours = await upload(ingest, csv_bytes(f"1,Cap,{NOBODY}/iso/d.jpg"), headers=bearer(acme))

    assert (created.status_code, revoked.status_code, listed.status_code) == (403, 404, 403)
    after = await snapshot(db, "acme")
    assert after["keys"] == before["keys"]
    assert still_ours.status_code == 202  # the key works: nothing was revoked
