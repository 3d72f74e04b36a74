"""The ingest HTTP contract with a fake repository and key store: status codes, problem+json, OpenAPI."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from uuid import UUID

import httpx
import pytest
from asgi_lifespan import LifespanManager
from ingest.app import Resources, create_app
from ingest.config import Settings
from ingest.repository import AcceptedRequest
from ingest.uploads import UploadPlan

from tests.support.keys import MemoryKeyStore

HEADER = "S. No.,Product Name,Input Image Urls"
GOOD_CSV = f"{HEADER}\n1,Shirt,http://a.example/1.jpg,http://a.example/2.jpg\n".encode()
PROBLEM = "application/problem+json"


@dataclass
class FakeRepository:
    plans: list[UploadPlan] = field(default_factory=list)
    failure: Exception | None = None
    pending: dict[str, int] = field(default_factory=dict)  # images waiting, by tenant, besides plans

    async def find_by_idempotency_key(self, tenant_id: str, key: str) -> AcceptedRequest | None:
        self._maybe_fail()
        for plan in self.plans:
            if plan.options.idempotency_key == key and plan.options.tenant_id == tenant_id:
                return accepted(plan)
        return None

    async def pending_images(self, tenant_id: str) -> int:
        self._maybe_fail()
        recorded = sum(p.total_images for p in self.plans if p.options.tenant_id == tenant_id)
        return self.pending.get(tenant_id, 0) + recorded

    async def record(self, plan: UploadPlan) -> AcceptedRequest:
        self._maybe_fail()
        self.plans.append(plan)
        return accepted(plan)

    def _maybe_fail(self) -> None:
        if self.failure is not None:
            raise self.failure


def accepted(plan: UploadPlan) -> AcceptedRequest:
    return AcceptedRequest(plan.request_id, plan.file_sha256, plan.total_products, plan.total_images)


@dataclass
class FakeWorld:
    repository: FakeRepository = field(default_factory=FakeRepository)
    checks: dict[str, bool] = field(default_factory=lambda: {"database": True, "kafka": True})
    wakes: int = 0
    keys: MemoryKeyStore = field(default_factory=MemoryKeyStore)

    def __post_init__(self) -> None:
        self.uploader = self.keys.add("default", "upload")

    @contextlib.asynccontextmanager
    async def resources(self, _settings: Settings):
        async def readiness() -> dict[str, bool]:
            return dict(self.checks)

        def wake() -> None:
            self.wakes += 1

        yield Resources(self.repository, readiness, wake, self.keys)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def client_for(world: FakeWorld, key: str | None = None, **settings):
    """A client of an ingest app on the world's fakes, sending `key` (the world's uploader by default)."""
    defaults = {"status_base_url": "http://status.test:8001", **settings}
    app = create_app(Settings(**defaults), resources=world.resources)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        headers = bearer(key or world.uploader)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest.test", headers=headers
        ) as client:
            yield client


@pytest.fixture
async def client(world):
    async with client_for(world) as client:
        yield client


async def post_csv(client, csv: bytes = GOOD_CSV, content_type: str = "text/csv", **kwargs):
    return await client.post("/upload", files={"file": ("p.csv", csv, content_type)}, **kwargs)


def assert_problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    return body


async def test_an_accepted_upload_answers_202_with_the_documented_fields_and_absolute_urls(client, world):
    resp = await post_csv(client)

    assert resp.status_code == 202
    body = resp.json()
    assert set(body) == {
        "request_id",
        "status",
        "total_products",
        "total_images",
        "status_url",
        "output_csv_url",
    }
    rid = body["request_id"]
    assert UUID(rid) == world.repository.plans[0].request_id
    assert (body["status"], body["total_products"], body["total_images"]) == ("pending", 1, 2)
    assert body["status_url"] == f"http://status.test:8001/status/{rid}"
    assert body["output_csv_url"] == f"http://status.test:8001/requests/{rid}/output.csv"
    assert world.wakes == 1


async def test_quality_defaults_to_50_and_takes_the_value_given(client, world):
    await post_csv(client)
    await post_csv(client, data={"quality": "95"})
    await post_csv(client, data={"quality": "1"})

    assert [p.options.quality for p in world.repository.plans] == [50, 95, 1]


@pytest.mark.parametrize("quality", ["0", "96", "-3", "high", "50.5"])
async def test_a_quality_outside_1_to_95_is_a_422_problem_naming_the_field(client, world, quality):
    body = assert_problem(await post_csv(client, data={"quality": quality}), 422)

    [error] = body["errors"]
    assert error["row"] is None
    assert error["column"] == "quality"
    assert "1 to 95" in error["message"]
    assert world.repository.plans == []


@pytest.mark.parametrize("webhook", ["ftp://hooks.example/x", "hooks.example/x", "http://", "https:///path"])
async def test_a_webhook_url_that_is_not_absolute_http_is_a_422_problem(client, world, webhook):
    body = assert_problem(await post_csv(client, data={"webhook_url": webhook}), 422)

    assert [e["column"] for e in body["errors"]] == ["webhook_url"]
    assert world.repository.plans == []


async def test_a_webhook_url_is_kept_with_the_request(client, world):
    resp = await post_csv(client, data={"webhook_url": "https://hooks.example/done"})

    assert resp.status_code == 202
    assert world.repository.plans[0].options.webhook_url == "https://hooks.example/done"


async def test_a_request_without_the_file_field_is_a_400_problem(client):
    assert_problem(await client.post("/upload", data={"quality": "50"}), 400)
    assert_problem(await client.post("/upload"), 400)


async def test_two_file_parts_in_one_upload_are_a_400_problem_and_nothing_is_recorded(client, world):
    other = GOOD_CSV.replace(b"Shirt", b"Other")
    files = [("file", ("a.csv", GOOD_CSV, "text/csv")), ("file", ("b.csv", other, "text/csv"))]
    body = assert_problem(await client.post("/upload", files=files), 400)
    assert "one `file`" in body["detail"]
    assert world.repository.plans == []


async def test_a_file_that_is_not_csv_text_is_a_415_problem(client, world):
    assert_problem(await post_csv(client, b"\x89PNG\r\n\x1a\n", "image/png"), 415)
    assert_problem(await post_csv(client, b"S. No.\x00,Product", "text/csv"), 415)
    assert world.repository.plans == []


async def test_a_body_that_is_not_a_form_upload_is_a_415_problem(client):
    resp = await client.post("/upload", content=GOOD_CSV, headers={"content-type": "text/csv"})

    assert_problem(resp, 415)


async def test_a_malformed_multipart_body_is_a_400_problem(client):
    resp = await client.post("/upload", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})

    assert_problem(resp, 400)


async def test_a_file_above_the_size_limit_is_a_413_problem_and_nothing_is_recorded(world):
    async with client_for(world, max_upload_bytes=1000) as client:
        small_body = await post_csv(client, GOOD_CSV + b"#" * 2000)  # file too big, body under the slack
        huge_body = await post_csv(client, GOOD_CSV + b"#" * 200_000)  # refused on Content-Length

    for resp in (small_body, huge_body):
        assert "1000 bytes" in assert_problem(resp, 413)["detail"]
    assert world.repository.plans == []


async def test_a_streamed_body_above_the_limit_is_a_413_problem(world):
    async def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\n'
        for _ in range(200):
            yield b"x" * 1024

    async with client_for(world, max_upload_bytes=1000) as client:
        resp = await client.post(
            "/upload", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )

    assert_problem(resp, 413)


async def test_an_invalid_csv_is_a_422_problem_listing_every_bad_row_with_its_line(client, world):
    lines = [HEADER, "1,Ok,http://a.example/1.jpg"]
    lines += ["x,Bad serial,http://a.example/2.jpg", "3,,http://a.example/3.jpg", "4,No url,"]
    lines += ["5,Bad url,ftp://a.example/5.jpg", "1,Duplicate,http://a.example/6.jpg"]

    body = assert_problem(await post_csv(client, "\n".join(lines).encode()), 422)

    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (3, "S. No."),
        (4, "Product Name"),
        (5, "Input Image Urls"),
        (6, "Input Image Urls"),
        (7, "S. No."),
    ]
    assert world.repository.plans == []


async def test_the_same_idempotency_key_and_file_returns_the_first_request(client, world):
    first = await post_csv(client, headers={"Idempotency-Key": "k-1"})
    again = await post_csv(client, headers={"Idempotency-Key": "k-1"})

    assert again.status_code == 202
    assert again.json() == first.json()
    assert len(world.repository.plans) == 1


async def test_the_same_idempotency_key_with_another_file_is_a_409_problem(client, world):
    await post_csv(client, headers={"Idempotency-Key": "k-2"})
    other = GOOD_CSV.replace(b"Shirt", b"Skirt")

    assert_problem(await post_csv(client, other, headers={"Idempotency-Key": "k-2"}), 409)
    assert len(world.repository.plans) == 1


async def test_an_idempotency_key_longer_than_200_characters_is_a_422_problem(client):
    body = assert_problem(await post_csv(client, headers={"Idempotency-Key": "k" * 201}), 422)

    assert body["errors"][0]["column"] == "idempotency-key"


@pytest.mark.parametrize("failure", [ConnectionRefusedError(111, "refused"), TimeoutError()])
async def test_an_unreachable_database_is_a_503_problem_with_retry_after(client, world, failure):
    world.repository.failure = failure

    resp = await post_csv(client)

    assert_problem(resp, 503)
    assert resp.headers["retry-after"] == "5"


async def test_an_unexpected_error_is_a_500_problem_not_a_bare_text_page(client, world):
    world.repository.failure = RuntimeError("bug")

    assert_problem(await post_csv(client), 500)


async def test_unknown_paths_and_methods_are_404_and_405_problems(client):
    assert_problem(await client.get("/nowhere"), 404)
    resp = await client.get("/upload")
    assert_problem(resp, 405)
    assert resp.headers["allow"] == "POST"


async def test_healthz_answers_while_readyz_names_what_is_unreachable(client, world):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok", "kafka": "ok"}

    world.checks["kafka"] = False
    body = assert_problem(await client.get("/readyz"), 503)
    assert "kafka" in body["detail"]
    assert "database" not in body["detail"]


async def test_openapi_and_docs_are_served_and_every_error_is_declared_as_problem_json(client):
    document = (await client.get("/openapi.json")).json()
    assert (await client.get("/docs")).status_code == 200

    upload = document["paths"]["/upload"]["post"]["responses"]
    assert set(upload) == {"202", "400", "401", "403", "409", "413", "415", "422", "429", "503"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert set(response["content"]) == {PROBLEM}, (method, path, status)
    assert "Problem" in document["components"]["schemas"]


async def test_a_header_of_a_million_unknown_columns_is_a_small_422_naming_the_count(client, world):
    header = HEADER + ",x" * 1_000_000  # a 2 MB file: it used to answer one error per column (109 MB)

    resp = await post_csv(client, f"{header}\n1,Shirt,http://a.example/1.jpg\n".encode())

    body = assert_problem(resp, 422)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(1, "")]
    assert "1000003 columns" in body["errors"][0]["message"]
    assert len(resp.content) < 4 * 1024
    assert world.repository.plans == []


async def test_unknown_header_columns_are_listed_up_to_the_cap_and_the_rest_counted(client):
    header = HEADER + "".join(f",extra{n}" for n in range(150))

    resp = await post_csv(client, f"{header}\n1,Shirt,http://a.example/1.jpg\n".encode())

    body = assert_problem(resp, 422)
    assert [e["column"] for e in body["errors"]] == [f"extra{n}" for n in range(100)]
    assert body["errors_omitted"] == 50
    assert body["detail"] == "150 problem(s) found in the file"


async def test_a_huge_name_copied_into_many_image_rows_is_refused_before_anything_is_stored(client, world):
    # 112 KB that stored 30 MB: a 100 KB name copied into each of 300 image rows.
    urls = ",".join(f"http://a.example/{n}.jpg" for n in range(300))

    resp = await post_csv(client, f'{HEADER}\n1,{"n" * 100_000},"{urls}"\n'.encode())

    body = assert_problem(resp, 422)
    assert sorted(e["column"] for e in body["errors"]) == ["Input Image Urls", "Product Name"]
    assert {e["row"] for e in body["errors"]} == {2}
    assert world.repository.plans == []


async def test_the_name_and_url_bounds_are_settings(world):
    urls = ",".join(f"http://a.example/{n}.jpg" for n in range(3))
    async with client_for(world, max_product_name_length=5, max_urls_per_row=2) as client:
        resp = await post_csv(client, f'{HEADER}\n1,Shirts,"{urls}"\n'.encode())

    body = assert_problem(resp, 422)
    assert len(body["errors"]) == 2
