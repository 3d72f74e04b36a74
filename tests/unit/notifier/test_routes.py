"""The notifier's routes on fakes: answers, problem shapes, and the caller's tenant on every call."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from notifier.app import create_app
from notifier.config import Settings
from notifier.deps import Resources

from tests.unit.notifier.fakes import (
    FakeDeliveryRepository,
    FakeKeyStore,
    FakeSubscriptions,
    FakeTenantSecrets,
)

A = {"Authorization": "Bearer tenant-a:webhooks,read"}
B = {"Authorization": "Bearer tenant-b:webhooks,read"}
READ_ONLY = {"Authorization": "Bearer tenant-a:read"}


class World:
    def __init__(self) -> None:
        self.deliveries = FakeDeliveryRepository()
        self.subscriptions = FakeSubscriptions(limit=2)
        self.tenant_secrets = FakeTenantSecrets()
        self.ready = {"database": True}

    async def readiness(self) -> dict[str, bool]:
        return dict(self.ready)


@pytest.fixture
async def world() -> World:
    return World()


@pytest.fixture
async def client(world) -> AsyncIterator[httpx.AsyncClient]:
    @contextlib.asynccontextmanager
    async def resources(_: Settings) -> AsyncIterator[Resources]:
        yield Resources(
            world.deliveries, world.subscriptions, world.tenant_secrets, world.readiness, FakeKeyStore()
        )

    app = create_app(Settings(), resources=resources)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier.test") as http:
            yield http


async def test_creating_a_subscription_shows_its_secret_once(client, world):
    created = await client.post("/subscriptions", json={"url": "https://127.0.0.1/hook"}, headers=A)
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    listed = await client.get("/subscriptions", headers=A)
    assert [s["url"] for s in listed.json()] == ["https://127.0.0.1/hook"]
    assert "secret" not in listed.json()[0]
    assert world.subscriptions.calls == [("create", "tenant-a")]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
        "/relative",
        "http://127.0.0.1/" + "a" * 2048,
        "http://" + "a" * 64 + "/x",  # a host label beyond DNS's 63 characters
    ],
)
async def test_a_subscription_url_must_be_a_plain_web_url(client, url):
    answer = await client.post("/subscriptions", json={"url": url}, headers=A)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


async def test_subscriptions_beyond_the_cap_are_409(client):
    codes = [
        (await client.post("/subscriptions", json={"url": f"http://127.0.0.1/{n}"}, headers=A)).status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 409]


async def test_without_a_secrets_key_subscriptions_are_503(client, world):
    world.subscriptions.can_store_secrets = False
    answer = await client.post("/subscriptions", json={"url": "http://127.0.0.1/h"}, headers=A)
    assert answer.status_code == 503
    assert world.subscriptions.rows == {}


async def test_deleting_asks_for_the_callers_tenant_and_is_404_for_another_tenants_id(client, world):
    created, _ = await world.subscriptions.create("tenant-a", "http://127.0.0.1/h", None)
    world.subscriptions.calls.clear()
    assert (await client.delete(f"/subscriptions/{created.subscription_id}", headers=B)).status_code == 404
    assert created.subscription_id in world.subscriptions.rows
    assert (await client.delete(f"/subscriptions/{created.subscription_id}", headers=A)).status_code == 204
    assert world.subscriptions.calls == [("delete", "tenant-b"), ("delete", "tenant-a")]


async def test_replay_is_202_for_ones_own_dead_letter_and_404_otherwise(client, world):
    dead = world.deliveries.add("tenant-a", status="dead")
    assert (await client.post(f"/deliveries/{dead.delivery_id}/replay", headers=B)).status_code == 404
    assert world.deliveries.rows[dead.delivery_id].status == "dead"
    answer = await client.post(f"/deliveries/{dead.delivery_id}/replay", headers=A)
    assert answer.status_code == 202
    assert answer.json() == {"delivery_id": str(dead.delivery_id), "status": "pending"}
    assert (await client.post(f"/deliveries/{dead.delivery_id}/replay", headers=A)).status_code == 404


async def test_the_delivery_log_shows_attempts_with_their_excerpt_to_the_owner_only(client, world):
    from notifier.repository import AttemptResult

    delivery = world.deliveries.add("tenant-a")
    result = AttemptResult(200, None, 4.5, "thanks", "delivered", None)
    await world.deliveries.record_attempt(delivery, result)
    own = await client.get(f"/requests/{delivery.request_id}/deliveries", headers=READ_ONLY)
    assert own.status_code == 200
    [row] = own.json()
    assert (row["webhook_id"], row["status_code"], row["response_excerpt"]) == (
        str(delivery.event_id),
        200,
        "thanks",
    )
    assert (await client.get(f"/requests/{delivery.request_id}/deliveries", headers=B)).status_code == 404
    assert ("request_exists", "tenant-b") in world.deliveries.calls


async def test_dead_letters_are_the_callers_only(client, world):
    mine = world.deliveries.add("tenant-a", status="dead")
    world.deliveries.add("tenant-b", status="dead")
    letters = (await client.get("/dead-letters", headers=A)).json()
    assert [d["delivery_id"] for d in letters] == [str(mine.delivery_id)]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/subscriptions"), ("POST", f"/deliveries/{uuid.uuid4()}/replay"), ("GET", "/dead-letters")],
)
async def test_keys_without_the_webhooks_scope_are_403_and_no_key_is_401(client, method, path):
    assert (await client.request(method, path, headers=READ_ONLY)).status_code == 403
    missing = await client.request(method, path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_readyz_follows_the_database_and_healthz_does_not(client, world):
    assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok"}
    world.ready["database"] = False
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert "database" in not_ready.json()["detail"]
    assert (await client.get("/healthz")).status_code == 200


async def test_a_database_outage_during_a_call_is_a_503_problem(client, world):
    world.deliveries.fail_with = OSError("connection refused")
    answer = await client.get(f"/requests/{uuid.uuid4()}/deliveries", headers=A)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"


async def test_rotating_the_signing_secret_shows_the_new_one_once_for_the_callers_tenant(client, world):
    first = await client.post("/signing-secret", headers=A)
    second = await client.post("/signing-secret", headers=A)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["secret"].startswith("whsec_")
    assert first.json()["previous_expires_at"] is None
    assert second.json()["previous_expires_at"] is not None
    assert first.json()["secret"] != second.json()["secret"]
    assert world.tenant_secrets.calls == [("rotate", "tenant-a"), ("rotate", "tenant-a")]


async def test_rotating_needs_the_webhooks_scope(client, world):
    resp = await client.post("/signing-secret", headers=READ_ONLY)
    assert resp.status_code == 403
    assert world.tenant_secrets.calls == []


async def test_without_a_secrets_key_rotating_is_503(client, world):
    world.tenant_secrets.can_store_secrets = False
    resp = await client.post("/signing-secret", headers=A)
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
