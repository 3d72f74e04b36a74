"""Keys, tenants, limits and headers of ingest, with fakes: who gets in, whose request it is, how much."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from ingest.limits import DRAIN_BYTES, TokenBuckets

from tests.unit.ingest.test_upload_api import (
    GOOD_CSV,
    HEADER,
    FakeWorld,
    assert_problem,
    bearer,
    client_for,
    post_csv,
)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


async def test_an_upload_without_a_key_or_with_an_unknown_one_is_401_and_nothing_is_recorded(world):
    async with client_for(world) as client:
        missing = await post_csv(client, headers={"Authorization": ""})
        unknown = await post_csv(client, headers=bearer("imgp_not-a-key-of-ours"))
        basic = await post_csv(client, headers={"Authorization": "Basic dXNlcjpwYXNz"})

    for resp in (missing, unknown, basic):
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert world.repository.plans == []


async def test_a_key_without_the_upload_scope_is_403(world):
    reader = world.keys.add("default", "read")
    async with client_for(world, reader) as client:
        assert_problem(await post_csv(client), 403)
    assert world.repository.plans == []


async def test_an_admin_key_may_upload(world):
    async with client_for(world, world.keys.add("default", "admin")) as client:
        assert (await post_csv(client)).status_code == 202


async def test_a_refused_small_upload_is_read_and_dropped_and_the_connection_stays_open(world):
    async with client_for(world, "imgp_unknown") as client:
        resp = await post_csv(client)

    assert_problem(resp, 401)
    assert "connection" not in resp.headers
    assert world.repository.plans == []


async def test_a_refused_large_upload_is_never_read_past_a_bound_and_the_connection_is_closed(world):
    pulled = []

    async def body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\n'
        for _ in range(1000):  # 64 MiB if it were all read
            pulled.append(1)
            yield b"x" * 65536

    async with client_for(world, "imgp_unknown") as client:
        resp = await client.post(
            "/upload", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        waiting = await client.post(
            "/upload", content=GOOD_CSV, headers={"content-type": "text/csv", "expect": "100-continue"}
        )

    assert_problem(resp, 401)
    assert resp.headers["connection"] == "close"
    assert len(pulled) <= DRAIN_BYTES // 65536 + 2
    assert_problem(waiting, 401)
    assert waiting.headers["connection"] == "close"


async def test_the_request_and_its_events_belong_to_the_tenant_of_the_key(world):
    acme = world.keys.add("acme", "upload")
    async with client_for(world, acme) as client:
        assert (await post_csv(client)).status_code == 202

    [plan] = world.repository.plans
    assert plan.options.tenant_id == "acme"
    events = [json.loads(value) for _, _, value in plan.outbox_rows()]
    assert {e["tenant_id"] for e in events} == {"acme"}


async def test_idempotency_keys_are_per_tenant(world):
    acme, globex = world.keys.add("acme", "upload"), world.keys.add("globex", "upload")
    async with client_for(world) as client:
        first = await post_csv(client, headers={"Idempotency-Key": "same", **bearer(acme)})
        other = await post_csv(client, headers={"Idempotency-Key": "same", **bearer(globex)})
        replay = await post_csv(client, headers={"Idempotency-Key": "same", **bearer(acme)})

    assert first.status_code == other.status_code == replay.status_code == 202
    assert first.json()["request_id"] != other.json()["request_id"]
    assert replay.json()["request_id"] == first.json()["request_id"]
    assert [p.options.tenant_id for p in world.repository.plans] == ["acme", "globex"]


@pytest.mark.parametrize(
    "url", ["https://user:pass@hooks.example/x", "https://token@hooks.example/x", "http://:pw@hooks.example/"]
)
async def test_a_webhook_url_with_credentials_is_a_422_problem(world, url):
    async with client_for(world) as client:
        body = assert_problem(await post_csv(client, data={"webhook_url": url}), 422)

    [error] = body["errors"]
    assert (error["column"], "credentials" in error["message"]) == ("webhook_url", True)
    assert url not in json.dumps(body)
    assert world.repository.plans == []


def test_a_bucket_allows_the_burst_then_one_upload_per_interval():
    now = [0.0]
    buckets = TokenBuckets(rate_per_minute=30, burst=2, clock=lambda: now[0])

    assert [buckets.take("k"), buckets.take("k")] == [0.0, 0.0]
    assert buckets.take("k") == pytest.approx(2.0)
    assert buckets.take("other key") == 0.0
    now[0] = 1.0
    assert buckets.take("k") == pytest.approx(1.0)
    now[0] = 2.0
    assert buckets.take("k") == 0.0
    assert TokenBuckets(0, 1).take("k") == 0.0  # rate 0: no limit


async def test_uploads_beyond_the_rate_are_429_with_retry_after_in_whole_seconds(world):
    async with client_for(world, upload_rate_per_minute=6, upload_burst=1) as client:
        first = await post_csv(client)
        limited = await post_csv(client)

    assert first.status_code == 202
    body = assert_problem(limited, 429)
    assert body["type"].endswith("/rate-limited")
    assert limited.headers["retry-after"] == "10"
    assert len(world.repository.plans) == 1


async def test_each_key_has_its_own_bucket(world):
    second = world.keys.add("default", "upload")
    async with client_for(world, upload_rate_per_minute=1, upload_burst=1) as client:
        assert (await post_csv(client)).status_code == 202
        assert (await post_csv(client)).status_code == 429
        assert (await post_csv(client, headers=bearer(second))).status_code == 202


async def test_a_tenant_at_its_backlog_cap_gets_429_with_a_clear_message(world):
    world.repository.pending["default"] = 10
    async with client_for(world, max_pending_images_per_tenant=10) as client:
        resp = await post_csv(client)

    body = assert_problem(resp, 429)
    assert body["type"].endswith("/backlog-full")
    assert "10 images of your tenant are waiting" in body["detail"]
    assert "at most 10" in body["detail"]
    assert resp.headers["retry-after"].isdigit()
    assert world.repository.plans == []


async def test_an_upload_that_would_pass_the_cap_is_refused_and_one_that_fits_is_accepted(world):
    world.repository.pending["default"] = 6
    three = f"{HEADER}\n1,A,http://a.example/1.jpg,http://a.example/2.jpg,http://a.example/3.jpg\n".encode()
    async with client_for(world, max_pending_images_per_tenant=10) as client:
        fits = await post_csv(client, three)
        over = await post_csv(client, GOOD_CSV)

    assert fits.status_code == 202
    assert "this upload adds 2" in assert_problem(over, 429)["detail"]
    assert len(world.repository.plans) == 1


async def test_the_cap_counts_only_the_callers_tenant(world):
    world.repository.pending["acme"] = 1000
    async with client_for(world, max_pending_images_per_tenant=10) as client:
        assert (await post_csv(client)).status_code == 202


async def test_an_admin_creates_a_key_shown_once_then_lists_it_without_the_secret(world):
    admin = world.keys.add("default", "admin")
    async with client_for(world, admin) as client:
        created = await client.post(
            "/keys", json={"tenant_id": "acme", "scopes": ["upload", "read"], "name": "ci"}
        )
        listed = await client.get("/keys", params={"tenant_id": "acme"})

    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert (body["tenant_id"], body["scopes"], body["name"]) == ("acme", ["read", "upload"], "ci")
    assert body["key"].startswith("imgp_")
    assert body["key"].startswith(body["prefix"])
    assert await world.keys.find(body["key"]) is not None
    assert [k["key_id"] for k in listed.json()] == [body["key_id"]]
    assert body["key"] not in listed.text
    assert "key" not in listed.json()[0]


async def test_a_revoked_key_is_refused_from_then_on(world):
    admin = world.keys.add("default", "admin")
    async with client_for(world, admin) as client:
        created = (await client.post("/keys", json={"tenant_id": "acme", "scopes": ["upload"]})).json()
        revoked = await client.delete(f"/keys/{created['key_id']}")
        again = await client.delete(f"/keys/{created['key_id']}")
        upload = await post_csv(client, headers=bearer(created["key"]))

    assert revoked.status_code == 204
    assert_problem(again, 404)
    assert_problem(upload, 401)


async def test_key_routes_need_the_admin_scope(world):
    async with client_for(world) as client:  # the world's key has only `upload`
        answers = [
            await client.post("/keys", json={"tenant_id": "acme", "scopes": ["read"]}),
            await client.get("/keys"),
            await client.delete(f"/keys/{uuid4()}"),
        ]
        anonymous = await client.get("/keys", headers={"Authorization": ""})

    for resp in answers:
        assert_problem(resp, 403)
    assert_problem(anonymous, 401)


async def test_a_tenants_admin_manages_only_its_own_tenants_keys(world):
    acme_admin = world.keys.add("acme", "admin")
    globex_key = world.keys.add("globex", "read")
    globex_id = (await world.keys.list("globex"))[0].key_id
    async with client_for(world, acme_admin) as client:
        for_other = await client.post("/keys", json={"tenant_id": "globex", "scopes": ["read"]})
        own = await client.post("/keys", json={"tenant_id": "acme", "scopes": ["read"]})
        listing = await client.get("/keys")
        other_listing = await client.get("/keys", params={"tenant_id": "globex"})
        revoke_other = await client.delete(f"/keys/{globex_id}")

    assert_problem(for_other, 403)
    assert own.status_code == 201
    assert {k["tenant_id"] for k in listing.json()} == {"acme"}
    assert_problem(other_listing, 403)
    assert_problem(revoke_other, 404)
    assert await world.keys.find(globex_key) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"tenant_id": "acme", "scopes": []},
        {"tenant_id": "acme", "scopes": ["root"]},
        {"tenant_id": "", "scopes": ["read"]},
        {"tenant_id": "a b", "scopes": ["read"]},
        {"scopes": ["read"]},
    ],
)
async def test_an_invalid_new_key_is_a_422_problem(world, body):
    async with client_for(world, world.keys.add("default", "admin")) as client:
        assert_problem(await client.post("/keys", json=body), 422)


async def test_health_checks_and_the_openapi_document_need_no_key(world):
    async with client_for(world, "imgp_unknown") as client:
        answers = [await client.get(path) for path in ("/healthz", "/readyz", "/openapi.json", "/docs")]

    assert [r.status_code for r in answers] == [200, 200, 200, 200]


async def test_the_openapi_document_declares_bearer_auth_on_every_route_that_needs_a_key(world):
    async with client_for(world) as client:
        document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`imgp_...`) sent as `Authorization: Bearer <key>`.",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            needs_key = path not in ("/healthz", "/readyz")
            assert ("security" in operation) == needs_key, (method, path)
            if needs_key:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_answers_carry_security_headers_and_the_docs_page_may_load_swagger_ui(world):
    async with client_for(world) as client:
        upload = await post_csv(client)
        refused = await post_csv(client, headers={"Authorization": ""})
        docs = await client.get("/docs")

    for resp in (upload, refused):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


async def test_cors_is_off_by_default(world):
    async with client_for(world) as client:
        preflight = await client.options(
            "/upload", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
        )
        simple = await client.get("/healthz", headers={"Origin": "https://shop.example"})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_only_the_configured_origins(world):
    async with client_for(world, cors_origins="https://admin.example") as client:
        allowed = await client.options(
            "/upload",
            headers={
                "Origin": "https://admin.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example"
    assert "access-control-allow-origin" not in other.headers
