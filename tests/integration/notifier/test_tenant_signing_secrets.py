"""Per-tenant signing secrets on real PostgreSQL and a real HTTP receiver (issue 12).

Per-upload webhooks used to be signed with one secret every tenant held, so any tenant could
forge another's. Now each tenant has its own, rotated through POST /signing-secret, stored
encrypted, with an overlap in which the old and the new secret both sign.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.notifier.support import (
    new_delivery,
    new_key,
    new_request,
    real_dispatcher,
    running_notifier,
    settings_for,
    snapshot,
)
from tests.support.servers import answers
from tests.support.webhooks import verify_standard_webhook

pytestmark = pytest.mark.integration

GLOBAL_SECRET = "whsec_" + "R2xvYmFsIHNlY3JldCBvZiB0aGUgb2xkIGRheXMhISE="  # noqa: S105 - a test secret


async def rotate(client, headers) -> dict:
    answer = await client.post("/signing-secret", headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def deliver(pool, settings, subscriber, tenant: str, path: str):
    """One per-upload webhook of `tenant` sent by the real dispatcher; the receiver's record of it."""
    subscriber.routes[path] = answers()
    request_id = await new_request(pool, tenant)
    await new_delivery(pool, tenant, request_id, url=subscriber.url(path))
    async with real_dispatcher(pool, settings=settings) as dispatcher:
        assert await dispatcher.dispatch_due() == 1
        await asyncio.wait_for(dispatcher.drain(), 10)
    [hit] = subscriber.hits(path)
    return hit


async def test_another_tenants_rotation_changes_nothing_of_ours(pool, fresh_database_url):
    settings = settings_for(fresh_database_url)
    async with running_notifier(pool, settings) as client:
        a, b = await new_key(pool, "tenant-a"), await new_key(pool, "tenant-b")
        await rotate(client, a)
        await rotate(client, a)  # A now has a current and a previous secret
        ours_before = await snapshot(pool, "tenant-a")
        theirs = await rotate(client, b)
        await rotate(client, b)
        assert await snapshot(pool, "tenant-a") == ours_before
        assert len(ours_before["tenant_signing_secrets"]) == 2
        assert len((await snapshot(pool, "tenant-b"))["tenant_signing_secrets"]) == 2
        assert theirs["previous_expires_at"] is None  # B's first rotation found none of A's


async def test_tenant_a_webhook_does_not_verify_with_tenant_b_secret(pool, fresh_database_url, subscriber):
    settings = settings_for(fresh_database_url)
    async with running_notifier(pool, settings) as client:
        ours = (await rotate(client, await new_key(pool, "tenant-a")))["secret"]
        theirs = (await rotate(client, await new_key(pool, "tenant-b")))["secret"]
    hit = await deliver(pool, settings, subscriber, "tenant-a", "a")
    assert verify_standard_webhook(ours, hit.headers, hit.body)
    assert not verify_standard_webhook(theirs, hit.headers, hit.body)
    other = await deliver(pool, settings, subscriber, "tenant-b", "b")
    assert verify_standard_webhook(theirs, other.headers, other.body)
    assert not verify_standard_webhook(ours, other.headers, other.body)


async def test_during_the_overlap_holders_of_only_the_old_or_only_the_new_secret_both_verify(
    pool, fresh_database_url, subscriber
):
    settings = settings_for(fresh_database_url, signing_secret_overlap_seconds=3600)
    async with running_notifier(pool, settings) as client:
        key = await new_key(pool, "tenant-a")
        old = (await rotate(client, key))["secret"]
        rotated = await rotate(client, key)
    new = rotated["secret"]
    assert rotated["previous_expires_at"] is not None
    hit = await deliver(pool, settings, subscriber, "tenant-a", "overlap")
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    assert verify_standard_webhook(old, hit.headers, hit.body)
    assert verify_standard_webhook(new, hit.headers, hit.body)


async def test_after_the_overlap_only_the_new_secret_verifies_and_rotations_keep_two_secrets_at_most(
    pool, fresh_database_url, subscriber
):
    settings = settings_for(fresh_database_url, signing_secret_overlap_seconds=0)
    async with running_notifier(pool, settings) as client:
        key = await new_key(pool, "tenant-a")
        issued = [(await rotate(client, key))["secret"] for _ in range(5)]
    assert (
        await pool.fetchval("SELECT count(*) FROM tenant_signing_secrets WHERE tenant_id = 'tenant-a'") == 2
    )
    hit = await deliver(pool, settings, subscriber, "tenant-a", "after")
    assert verify_standard_webhook(issued[-1], hit.headers, hit.body)
    assert not any(verify_standard_webhook(s, hit.headers, hit.body) for s in issued[:-1])


async def test_a_tenant_without_a_secret_gets_one_made_and_stored_encrypted(
    pool, fresh_database_url, subscriber
):
    settings = settings_for(fresh_database_url)
    hit = await deliver(pool, settings, subscriber, "tenant-new", "first")
    rows = await pool.fetch(
        "SELECT secret_encrypted FROM tenant_signing_secrets WHERE tenant_id = 'tenant-new'"
    )
    assert len(rows) == 1
    assert not bytes(rows[0]["secret_encrypted"]).startswith(b"whsec_")
    assert b"whsec_" not in bytes(rows[0]["secret_encrypted"])
    assert len(hit.headers["webhook-signature"].split(" ")) == 1


async def test_the_default_tenants_first_secret_is_the_global_one_until_it_rotates(
    pool, fresh_database_url, subscriber
):
    settings = settings_for(
        fresh_database_url, signing_secret=GLOBAL_SECRET, signing_secret_overlap_seconds=0
    )
    hit = await deliver(pool, settings, subscriber, "default", "default-1")
    assert verify_standard_webhook(GLOBAL_SECRET, hit.headers, hit.body)
    other = await deliver(pool, settings, subscriber, "tenant-x", "other-1")
    assert not verify_standard_webhook(GLOBAL_SECRET, other.headers, other.body)

    async with running_notifier(pool, settings) as client:
        new = (await rotate(client, await new_key(pool, "default")))["secret"]
    after = await deliver(pool, settings, subscriber, "default", "default-2")
    assert verify_standard_webhook(new, after.headers, after.body)
    assert not verify_standard_webhook(GLOBAL_SECRET, after.headers, after.body)
