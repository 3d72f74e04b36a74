"""The HTTP service kit: one app factory, one problem shape, health routes and the URL rule."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Query
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.httpkit import (
    MAX_LISTED_ERRORS,
    PROBLEM_JSON,
    health_router,
    install_edge,
    invalid,
    service_app,
)
from pipeline_runtime.urls import MAX_URL_LENGTH, web_url_problem

from tests.support.keys import MemoryKeyStore


@dataclass
class FakeResources:
    key_store: MemoryKeyStore = field(default_factory=MemoryKeyStore)
    checks: dict[str, bool] = field(default_factory=lambda: {"database": True})
    failure: Exception | None = None

    async def readiness(self) -> dict[str, bool]:
        return dict(self.checks)


def make_app(resources: FakeResources) -> FastAPI:
    @contextlib.asynccontextmanager
    async def connect(_settings: object):
        yield resources

    app = service_app(object(), connect, title="kit test", description="A test app.")

    @app.get("/things")
    async def things(caller: Principal = api_key("read"), n: int = Query(1, ge=1)) -> dict:
        if resources.failure is not None:
            raise resources.failure
        return {"tenant": caller.tenant_id, "n": n}

    @app.get("/many-errors")
    async def many_errors() -> object:
        errors = [{"row": i, "column": "c", "message": "bad"} for i in range(MAX_LISTED_ERRORS + 25)]
        return invalid("invalid-csv", "Invalid CSV", errors, omitted=5)

    app.include_router(health_router(["database"], readiness_doc="Ready when the database answers."))
    install_edge(app, service="kit-test")
    return app


@pytest.fixture
async def world():
    resources = FakeResources()
    app = make_app(resources)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
            yield resources, client


async def test_the_resources_key_store_admits_keys_and_a_missing_key_is_a_401_problem(world):
    resources, client = world
    key = resources.key_store.add("acme", "read")

    refused = await client.get("/things")
    admitted = await client.get("/things", headers={"Authorization": f"Bearer {key}"})

    assert (refused.status_code, refused.headers["content-type"]) == (401, PROBLEM_JSON)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert admitted.json() == {"tenant": "acme", "n": 1}
    assert admitted.headers["x-content-type-options"] == "nosniff"  # the edge's security headers


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(), asyncpg.InsufficientResourcesError("too many clients")],
)
async def test_an_unreachable_or_full_database_is_a_503_problem_with_retry_after(world, failure):
    resources, client = world
    key = resources.key_store.add("acme", "read")
    resources.failure = failure

    answer = await client.get("/things", headers={"Authorization": f"Bearer {key}"})

    assert (answer.status_code, answer.json()["type"]) == (503, "https://imgpipe.dev/problems/unavailable")
    assert answer.headers["retry-after"] == "5"


async def test_a_validation_error_and_an_unknown_route_are_problems(world):
    resources, client = world
    key = resources.key_store.add("acme", "read")

    bad = await client.get("/things?n=0", headers={"Authorization": f"Bearer {key}"})
    missing = await client.get("/nowhere")

    assert bad.status_code == 422
    assert [e["column"] for e in bad.json()["errors"]] == ["n"]
    assert (missing.status_code, missing.json()["type"]) == (404, "https://imgpipe.dev/problems/not-found")


async def test_a_long_error_list_is_capped_and_counts_what_it_left_out(world):
    _, client = world

    body = (await client.get("/many-errors")).json()

    assert len(body["errors"]) == MAX_LISTED_ERRORS
    assert body["errors_omitted"] == 25 + 5


async def test_readyz_names_what_is_unreachable(world):
    resources, client = world
    ready = await client.get("/readyz")
    resources.checks["database"] = False
    not_ready = await client.get("/readyz")

    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {"database": False}


async def test_the_openapi_document_has_one_problem_model_with_its_field_errors(world):
    _, client = world

    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]

    assert set(schemas["Problem"]["properties"]) >= {"type", "title", "status", "detail", "errors"}
    assert "FieldError" in schemas
    assert set(schemas["Readiness"]["properties"]) == {"status", "database"}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://a.example/x", "absolute http or https"),
        ("/relative", "absolute http or https"),
        ("http://user:pw@a.example/", "credentials"),
        ("http://a.example:99999/", "valid host and port"),
        ("http://" + "a" * 64 + ".example/", "label longer than 63"),
        ("http://a.example/" + "x" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH}"),
    ],
)
def test_the_url_rule_refuses_what_no_client_url_may_be(url, fragment):
    assert fragment in (web_url_problem(url) or "")


@pytest.mark.parametrize("url", ["https://a.example/hook", "http://127.0.0.1:8080/x?y=1", "http://[::1]:9/"])
def test_the_url_rule_accepts_absolute_web_urls(url):
    assert web_url_problem(url) is None
