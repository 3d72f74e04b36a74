"""Every route of ingest, the tracker API and the notifier, on the running stack: who gets in.

For each route: no key → 401, an unknown key → 401, a key without the route's scope → 403, a key
of another tenant on this tenant's id → 404 (never 403), and the right key → success. Two tenants
are made through ingest's admin route with the stack's bootstrap key. The matrix must name every
operation of the three OpenAPI documents the services serve, so a new route cannot go untested.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.api import bearer, csv_of, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.servers import LocalServer, answers, serving, wait_until

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


@dataclass
class Tenant:
    """A tenant of the test: its keys by scope and one resource of each kind."""

    name: str
    keys: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    subscription_id: str = ""
    delivery_id: str = ""  # a dead delivery, replayable
    key_id: str = ""  # a spare key, revocable
    output_url: str = ""


@dataclass
class World:
    urls: dict[str, str]
    ours: Tenant
    theirs: Tenant
    image_host: LocalServer
    subscriber: LocalServer


async def make_key(http: httpx.AsyncClient, ingest: str, admin: str, tenant: str, *scopes: str) -> dict:
    resp = await http.post(
        f"{ingest}/keys", json={"tenant_id": tenant, "scopes": list(scopes)}, headers=bearer(admin)
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def make_tenant(
    http: httpx.AsyncClient, urls: dict[str, str], bootstrap: str, scopes: list[str]
) -> Tenant:
    tenant = Tenant(f"t-{uuid.uuid4().hex[:10]}")
    for scope in scopes:
        tenant.keys[scope] = (await make_key(http, urls["ingest"], bootstrap, tenant.name, scope))["key"]
    tenant.key_id = (await make_key(http, urls["ingest"], bootstrap, tenant.name, "read"))["key_id"]
    return tenant


async def give_resources(http: httpx.AsyncClient, world: World, tenant: Tenant) -> None:
    """A finished request whose webhook was refused for good (a dead letter), and a subscription."""
    read, hooks = bearer(tenant.keys["read"]), bearer(tenant.keys["webhooks"])
    csv = csv_of([(1, "Lamp", [world.image_host.url("lamp.jpg")])])
    form = {"webhook_url": world.subscriber.url("gone")}
    accepted = await upload_csv(world.urls["ingest"], csv, headers=bearer(tenant.keys["upload"]), **form)
    tenant.request_id = accepted["request_id"]
    await wait_for_completion(accepted["status_url"], timeout=60, headers=read)
    images = (
        await http.get(f"{world.urls['tracker']}/requests/{tenant.request_id}/images", headers=read)
    ).json()
    tenant.output_url = images["items"][0]["output_url"]
    letters: list[dict] = []

    async def dead_letter() -> bool:
        letters[:] = (await http.get(f"{world.urls['notifier']}/dead-letters", headers=hooks)).json()
        return any(d["request_id"] == tenant.request_id for d in letters)

    assert await wait_until(dead_letter, timeout=30), letters
    tenant.delivery_id = next(d["delivery_id"] for d in letters if d["request_id"] == tenant.request_id)
    resp = await http.post(
        f"{world.urls['notifier']}/subscriptions", json={"url": world.subscriber.url("ok")}, headers=hooks
    )
    assert resp.status_code == 201, resp.text
    tenant.subscription_id = resp.json()["subscription_id"]


@pytest.fixture(scope="module")
async def world(pipeline):
    async with (
        serving({"lamp.jpg": photo_jpeg(64, 48, seed=7)}) as image_host,
        serving(routes={"ok": answers(), "gone": answers(then=410)}) as subscriber,
    ):
        yield await build_world(pipeline, image_host, subscriber)


async def build_world(pipeline, image_host: LocalServer, subscriber: LocalServer) -> World:
    urls = {
        "ingest": f"http://127.0.0.1:{pipeline.ingest_port}",
        "tracker": f"http://127.0.0.1:{pipeline.tracker_port}",
        "notifier": f"http://127.0.0.1:{pipeline.notifier_port}",
    }
    all_scopes = ["upload", "read", "webhooks", "admin"]
    async with httpx.AsyncClient(timeout=30) as http:
        ours = await make_tenant(http, urls, pipeline.api_key(), all_scopes)
        theirs = await make_tenant(http, urls, pipeline.api_key(), all_scopes)
        built = World(urls, ours, theirs, image_host, subscriber)
        for tenant in (ours, theirs):
            await give_resources(http, built, tenant)
    return built


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str  # as in the OpenAPI document; {placeholders} name a resource of a tenant
    scope: str
    ok: int
    body: Callable[[World, Tenant], dict[str, Any]] | None = None

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"

    def url(self, world: World, tenant: Tenant) -> str:
        ids = {
            "request_id": tenant.request_id,
            "subscription_id": tenant.subscription_id,
            "delivery_id": tenant.delivery_id,
            "key_id": tenant.key_id,
        }
        return world.urls[self.service] + self.path.format(**ids)

    @property
    def names_a_resource(self) -> bool:
        return "{" in self.path


def upload_body(world: World, _: Tenant) -> dict[str, Any]:
    csv = csv_of([(1, "Desk", [world.image_host.url("lamp.jpg")])])
    return {"files": {"file": ("p.csv", csv, "text/csv")}}


def new_key_body(_: World, tenant: Tenant) -> dict[str, Any]:
    return {"json": {"tenant_id": tenant.name, "scopes": ["read"]}}


def subscription_body(world: World, _: Tenant) -> dict[str, Any]:
    return {"json": {"url": world.subscriber.url("ok")}}


READS = ["/status/{request_id}", "/requests/{request_id}/images", "/requests/{request_id}/output.csv"]
READS.append("/requests/{request_id}/events")
ROUTES = [
    Route("ingest", "POST", "/upload", "upload", 202, upload_body),
    Route("ingest", "POST", "/keys", "admin", 201, new_key_body),
    Route("ingest", "GET", "/keys", "admin", 200),
    Route("ingest", "DELETE", "/keys/{key_id}", "admin", 204),
    # The tenant's request has finished by then: the right key reaches the cancel, which refuses.
    Route("ingest", "DELETE", "/requests/{request_id}", "upload", 409),
    *(Route("ingest", "GET", path, "read", 200) for path in READS),  # the gateway to the tracker API
    *(Route("tracker", "GET", path, "read", 200) for path in READS),
    Route("notifier", "POST", "/subscriptions", "webhooks", 201, subscription_body),
    Route("notifier", "GET", "/subscriptions", "webhooks", 200),
    Route("notifier", "DELETE", "/subscriptions/{subscription_id}", "webhooks", 204),
    Route("notifier", "GET", "/requests/{request_id}/deliveries", "read", 200),
    Route("notifier", "GET", "/dead-letters", "webhooks", 200),
    Route("notifier", "POST", "/deliveries/{delivery_id}/replay", "webhooks", 202),
    Route("notifier", "POST", "/signing-secret", "webhooks", 201),  # always the caller's own tenant
]
OPEN = {
    (service, "GET", path)
    for service in ("ingest", "tracker", "notifier")
    for path in ("/healthz", "/readyz")
}
# Operators' routes (admin keys of the default tenant only): tests/e2e/test_fairness.py.
OPERATORS = {("ingest", method, "/tenants/{tenant_id}/weight") for method in ("GET", "PUT")}


async def call(
    http: httpx.AsyncClient, route: Route, world: World, owner: Tenant, key: str | None
) -> httpx.Response:
    headers = bearer(key) if key else {}
    body = route.body(world, owner) if route.body else {}
    return await http.request(route.method, route.url(world, owner), headers=headers, **body)


def assert_problem(resp: httpx.Response, status: int, route: Route) -> dict:
    assert resp.status_code == status, (str(route), resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith(PROBLEM), (str(route), resp.headers)
    return resp.json()


def wrong_scope(route: Route) -> str:
    """A scope that does not pass the route's check (admin passes every check)."""
    return "read" if route.scope == "upload" else "upload"


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_each_route_refuses_a_missing_or_unknown_key_and_the_wrong_scope_hides_other_tenants_and_serves_the_right_key(
    world, route
):
    ours, theirs = world.ours, world.theirs
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await call(http, route, world, ours, None)
        unknown = await call(http, route, world, ours, "imgp_" + "A" * 43)
        forbidden = await call(http, route, world, ours, ours.keys[wrong_scope(route)])
        other = (
            await call(http, route, world, theirs, ours.keys[route.scope]) if route.names_a_resource else None
        )
        served = await call(http, route, world, ours, ours.keys[route.scope])

    for refused in (missing, unknown):
        assert_problem(refused, 401, route)
        assert refused.headers["www-authenticate"] == "Bearer"
    assert_problem(forbidden, 403, route)
    if other is not None:
        assert_problem(other, 404, route)
    assert served.status_code == route.ok, (str(route), served.text)


async def test_the_matrix_names_every_operation_the_three_services_document(world):
    async with httpx.AsyncClient(timeout=10) as http:
        documents = {name: (await http.get(f"{url}/openapi.json")).json() for name, url in world.urls.items()}
    documented = {
        (name, method.upper(), path)
        for name, document in documents.items()
        for path, operations in document["paths"].items()
        for method in operations
    }

    assert documented == {(r.service, r.method, r.path) for r in ROUTES} | OPEN | OPERATORS


async def test_lists_show_only_the_callers_tenant(world):
    ours, theirs = world.ours, world.theirs
    async with httpx.AsyncClient(timeout=10) as http:
        keys = (await http.get(f"{world.urls['ingest']}/keys", headers=bearer(ours.keys["admin"]))).json()
        asked_for_theirs = await http.get(
            f"{world.urls['ingest']}/keys",
            params={"tenant_id": theirs.name},
            headers=bearer(ours.keys["admin"]),
        )
        subscriptions = (
            await http.get(f"{world.urls['notifier']}/subscriptions", headers=bearer(ours.keys["webhooks"]))
        ).json()
        letters = (
            await http.get(f"{world.urls['notifier']}/dead-letters", headers=bearer(ours.keys["webhooks"]))
        ).json()
        key_for_theirs = await http.post(
            f"{world.urls['ingest']}/keys",
            json={"tenant_id": theirs.name, "scopes": ["read"]},
            headers=bearer(ours.keys["admin"]),
        )

    assert keys
    assert {k["tenant_id"] for k in keys} == {ours.name}
    assert asked_for_theirs.status_code == 403
    assert theirs.subscription_id not in {s["subscription_id"] for s in subscriptions}
    assert theirs.request_id not in {d["request_id"] for d in letters}
    assert key_for_theirs.status_code == 403


async def test_health_checks_documents_the_web_page_and_media_files_need_no_key(world):
    ours = world.ours
    media_path = ours.output_url.split("/media/", 1)[1]
    open_urls = [
        *(
            f"{url}{path}"
            for url in world.urls.values()
            for path in ("/healthz", "/readyz", "/openapi.json", "/docs")
        ),
        f"{world.urls['ingest']}/",
        f"{world.urls['ingest']}/assets/app.js",
        ours.output_url,  # the tracker API's /media: output URLs go to storefronts
        f"{world.urls['ingest']}/media/{media_path}",  # the same file through ingest's gateway
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        answers = {url: (await http.get(url)).status_code for url in open_urls}

    assert answers == dict.fromkeys(open_urls, 200)


async def test_answers_of_ingest_and_the_tracker_api_carry_security_headers_and_no_cors(world):
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [
            await http.get(f"{world.urls['ingest']}/healthz", headers={"Origin": "https://evil.example"}),
            await http.post(f"{world.urls['ingest']}/upload", headers={"Origin": "https://evil.example"}),
            await http.get(
                f"{world.urls['tracker']}/status/{world.ours.request_id}", headers={"Origin": "https://x"}
            ),
            await http.options(
                f"{world.urls['tracker']}/status/{world.ours.request_id}",
                headers={"Origin": "https://x", "Access-Control-Request-Method": "GET"},
            ),
        ]

    for resp in answers:
        assert resp.headers["x-content-type-options"] == "nosniff", resp.request.url
        assert resp.headers["x-frame-options"] == "DENY", resp.request.url
        assert "access-control-allow-origin" not in resp.headers, resp.request.url
