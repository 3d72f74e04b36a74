"""Keys and limits of ingest on the real PostgreSQL: the key command, admin routes, rate and backlog.

Ingest runs in-process (create_app and its lifespan) so that each test picks its own small limits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.integration.ingest.support import NOBODY, bearer, csv_bytes, running_ingest, upload

pytestmark = pytest.mark.integration


def images_csv(count: int, tag: str) -> bytes:
    urls = ",".join(f"{NOBODY}/{tag}/{n}.jpg" for n in range(count))
    return csv_bytes(f'1,Product,"{urls}"')


async def new_key(ingest: httpx.AsyncClient, tenant: str, *scopes: str) -> str:
    """A key made through the admin route with the app's bootstrap key."""
    resp = await ingest.post("/keys", json={"tenant_id": tenant, "scopes": list(scopes)})
    assert resp.status_code == 201, resp.text
    return resp.json()["key"]


def keys_command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "ingest", "keys", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_uploads_over_the_rate_get_429_with_retry_after_and_succeed_after_that_wait(
    fresh_database_url, bootstrap_servers
):
    overrides = {"upload_rate_per_minute": 60, "upload_burst": 2}
    async with running_ingest(fresh_database_url, bootstrap_servers, **overrides) as ingest:
        burst = [await upload(ingest, images_csv(1, f"rate-{n}")) for n in range(2)]
        limited = await upload(ingest, images_csv(1, "rate-2"))
        waited = int(limited.headers["retry-after"])
        await asyncio.sleep(waited)
        after_the_wait = await upload(ingest, images_csv(1, "rate-3"))

    assert [r.status_code for r in burst] == [202, 202]
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"].endswith("/rate-limited")
    assert waited == 1
    assert after_the_wait.status_code == 202, after_the_wait.text


async def test_a_tenant_over_its_backlog_cap_gets_429_until_its_requests_finish(
    fresh_database_url, bootstrap_servers, db
):
    tenant = f"backlog-{uuid.uuid4().hex[:8]}"
    async with running_ingest(
        fresh_database_url, bootstrap_servers, max_pending_images_per_tenant=5
    ) as ingest:
        key = bearer(await new_key(ingest, tenant, "upload"))
        first = await upload(ingest, images_csv(3, "b1"), headers=key)
        too_many = await upload(ingest, images_csv(3, "b2"), headers=key)
        fits = await upload(ingest, images_csv(2, "b3"), headers=key)
        at_cap = await upload(ingest, images_csv(1, "b4"), headers=key)
        other_tenant = await upload(ingest, images_csv(1, "b5"))  # the bootstrap key: tenant default
        await db.execute(
            "UPDATE requests SET processed_images = total_images, completed_at = now() WHERE request_id = $1",
            uuid.UUID(first.json()["request_id"]),
        )
        after_one_finished = await upload(ingest, images_csv(3, "b6"), headers=key)

    assert [first.status_code, fits.status_code, other_tenant.status_code] == [202, 202, 202]
    for refused in (too_many, at_cap):
        assert refused.status_code == 429
        assert refused.json()["type"].endswith("/backlog-full")
        assert refused.headers["retry-after"].isdigit()
    assert too_many.json()["detail"].startswith("3 images of your tenant are waiting to be processed")
    assert "this upload adds 3" in too_many.json()["detail"]
    assert "at most 5" in at_cap.json()["detail"]
    assert after_one_finished.status_code == 202, after_one_finished.text
    tenants = await db.fetch(
        "SELECT DISTINCT tenant_id FROM requests WHERE request_id = ANY($1::uuid[])",
        [uuid.UUID(r.json()["request_id"]) for r in (first, fits, after_one_finished)],
    )
    assert [r["tenant_id"] for r in tenants] == [tenant]


async def test_the_key_command_creates_a_working_key_lists_it_without_the_secret_and_revokes_it(
    fresh_database_url, bootstrap_servers, db
):
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    created = await asyncio.to_thread(
        keys_command,
        fresh_database_url,
        "create",
        "--tenant",
        tenant,
        "--scopes",
        "upload,read",
        "--name",
        "ci",
    )
    assert created.returncode == 0, created.stderr
    [key] = [line for line in created.stdout.split() if line.startswith("imgp_")]
    [key_id] = [line.split()[1] for line in created.stdout.splitlines() if line.startswith("key_id")]

    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        accepted = await upload(ingest, images_csv(1, "cli"), headers=bearer(key))
        listed = await asyncio.to_thread(keys_command, fresh_database_url, "list", "--tenant", tenant)
        revoked = await asyncio.to_thread(keys_command, fresh_database_url, "revoke", key_id)
        again = await asyncio.to_thread(keys_command, fresh_database_url, "revoke", key_id)
        refused = await upload(ingest, images_csv(1, "cli-2"), headers=bearer(key))

    assert accepted.status_code == 202, accepted.text
    owner = await db.fetchval(
        "SELECT tenant_id FROM requests WHERE request_id = $1", uuid.UUID(accepted.json()["request_id"])
    )
    assert owner == tenant
    assert listed.returncode == 0
    assert key_id in listed.stdout
    assert "upload,read" in listed.stdout or "read,upload" in listed.stdout
    assert key not in listed.stdout
    assert key[12:] not in listed.stdout
    assert (revoked.returncode, again.returncode) == (0, 1)
    assert refused.status_code == 401


async def test_admin_routes_create_list_and_revoke_keys_in_postgres(
    fresh_database_url, bootstrap_servers, db
):
    tenant = f"admin-{uuid.uuid4().hex[:8]}"
    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        created = (
            await ingest.post("/keys", json={"tenant_id": tenant, "scopes": ["upload"], "name": "x"})
        ).json()
        used = await upload(ingest, images_csv(1, "admin"), headers=bearer(created["key"]))
        listed = (await ingest.get("/keys", params={"tenant_id": tenant})).json()
        revoked = await ingest.delete(f"/keys/{created['key_id']}")
        refused = await upload(ingest, images_csv(1, "admin-2"), headers=bearer(created["key"]))

    stored = await db.fetchrow(
        "SELECT key_hash, prefix FROM api_keys WHERE key_id = $1", uuid.UUID(created["key_id"])
    )
    assert created["key"].encode() not in stored["key_hash"]
    assert stored["prefix"] == created["key"][:12]
    assert used.status_code == 202
    assert [(k["key_id"], k["name"]) for k in listed] == [(created["key_id"], "x")]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]
    assert revoked.status_code == 204
    assert refused.status_code == 401


async def test_the_bootstrap_key_exists_after_startup_with_every_scope(fresh_database_url, bootstrap_servers):
    started = time.monotonic()
    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        listed = await ingest.get("/keys", params={"tenant_id": "default"})

    assert time.monotonic() - started < 30
    bootstrap = [k for k in listed.json() if k["name"] == "bootstrap"]
    assert bootstrap
    assert set(bootstrap[-1]["scopes"]) == {"upload", "read", "webhooks", "admin"}


async def test_refused_uploads_leave_nothing_in_postgres(fresh_database_url, bootstrap_servers):
    marker = f"{NOBODY}/refused-{uuid.uuid4().hex}"
    data = csv_bytes(f"1,Shirt,{marker}/1.jpg")
    async with running_ingest(fresh_database_url, bootstrap_servers) as ingest:
        reader = bearer(await new_key(ingest, "default", "read"))
        answers = [
            await upload(ingest, data, headers={"Authorization": ""}),
            await upload(ingest, data, headers=bearer("imgp_" + "x" * 43)),
            await upload(ingest, data, headers=reader),
        ]
    conn = await asyncpg.connect(fresh_database_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM images WHERE input_url LIKE $1", f"{marker}/%")
    finally:
        await conn.close()

    assert [r.status_code for r in answers] == [401, 401, 403]
    assert stored == 0
