"""Who may read what from the status API: keys, scopes, tenants, /media, headers and CORS (fakes)."""

from __future__ import annotations

import contextlib

import pytest
from fastapi.routing import APIRoute
from tracker.config import Settings

from tests.support.keys import MemoryKeyStore
from tests.unit.tracker.fakes import FakeQueries, assert_problem, build_app, image, serve

ROUTES = ("/status/{rid}", "/requests/{rid}/images", "/requests/{rid}/output.csv")


@pytest.fixture
def keys() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def repository() -> FakeQueries:
    return FakeQueries()


@contextlib.asynccontextmanager
async def api(repository, keys, media_dir, **settings):
    async with serve(build_app(repository, keys, Settings(media_dir=media_dir, **settings))) as client:
        yield client


@pytest.fixture
async def client(repository, keys, tmp_path):
    async with api(repository, keys, tmp_path / "media") as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def finished_request(repository: FakeQueries, tenant: str = "default"):
    return repository.add([image(2, 0, "http://a/1.jpg", "http://o/1.jpg")], 1, finished=True, tenant=tenant)


@pytest.mark.parametrize("route", ROUTES)
async def test_every_route_needs_a_key_with_the_read_scope(client, repository, keys, route):
    path = route.format(rid=finished_request(repository))
    uploader = keys.add("default", "upload")

    missing = await client.get(path)
    unknown = await client.get(path, headers=bearer("imgp_unknown"))
    wrong_scope = await client.get(path, headers=bearer(uploader))
    reader = await client.get(path, headers=bearer(keys.add("default", "read")))
    admin = await client.get(path, headers=bearer(keys.add("default", "admin")))

    for resp in (missing, unknown):
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert_problem(wrong_scope, 403)
    assert (reader.status_code, admin.status_code) == (200, 200)


@pytest.mark.parametrize("route", ROUTES)
async def test_another_tenants_request_is_a_404_like_one_that_does_not_exist(client, repository, keys, route):
    theirs = finished_request(repository, tenant="acme")
    ours = keys.add("default", "read")

    resp = await client.get(route.format(rid=theirs), headers=bearer(ours))
    owner = await client.get(route.format(rid=theirs), headers=bearer(keys.add("acme", "read")))

    body = assert_problem(resp, 404)
    assert body["detail"] == f"no request with id {theirs}"
    assert owner.status_code == 200
    # Every query asked with the caller's tenant: the database, not only the route, keeps them apart.
    assert {tenant for _, tenant, _ in repository.calls} == {"default", "acme"}
    assert [call for call in repository.calls if call[1] == "default"] == [
        ("request_status", "default", theirs)
    ]


async def test_the_api_has_no_route_that_writes(client, repository, keys, tmp_path):
    """Read-only by design: were a write route added, it would need a tenant-scoped test here."""
    app = build_app(repository, keys, Settings(media_dir=tmp_path / "media"))
    methods = {m for r in app.routes if isinstance(r, APIRoute) for m in r.methods}

    assert methods <= {"GET", "HEAD"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert_problem(await client.request(method, "/status/00000000-0000-0000-0000-000000000000"), 405)


async def test_media_files_are_public_by_url(repository, keys, tmp_path):
    (tmp_path / "media" / "r").mkdir(parents=True)
    (tmp_path / "media" / "r" / "x.jpg").write_bytes(b"\xff\xd8jpeg")
    async with api(repository, keys, tmp_path / "media") as client:
        resp = await client.get("/media/r/x.jpg")

    assert resp.status_code == 200
    assert resp.content == b"\xff\xd8jpeg"
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_health_checks_and_the_openapi_document_need_no_key(client):
    answers = [await client.get(path) for path in ("/healthz", "/readyz", "/openapi.json", "/docs")]

    assert [r.status_code for r in answers] == [200, 200, 200, 200]
    assert "https://cdn.jsdelivr.net" in answers[3].headers["content-security-policy"]


async def test_the_openapi_document_declares_bearer_auth_on_the_routes_that_need_a_key(client):
    document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    secured = {path for path, ops in document["paths"].items() if "security" in ops["get"]}
    assert secured == set(document["paths"]) - {"/healthz", "/readyz"}
    for path in secured:
        assert {"401", "403"} <= set(document["paths"][path]["get"]["responses"]), path


async def test_answers_carry_security_headers(client, repository, keys):
    ok = await client.get(
        f"/status/{finished_request(repository)}", headers=bearer(keys.add("default", "read"))
    )
    refused = await client.get(f"/status/{finished_request(repository)}")

    for resp in (ok, refused):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"


async def test_cors_is_off_by_default_and_allows_only_configured_origins(repository, keys, tmp_path):
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    async with api(repository, keys, tmp_path / "a") as client:
        off = await client.options("/status/x", headers=preflight)
    async with api(repository, keys, tmp_path / "b", cors_origins="https://shop.example") as client:
        on = await client.options("/status/x", headers=preflight)
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in off.headers
    assert on.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in other.headers
