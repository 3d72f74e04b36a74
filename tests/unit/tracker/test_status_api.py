"""The status API contract with fake queries: fields, pagination, output CSV, problem+json."""

from __future__ import annotations

import csv
import io
from uuid import uuid4

import pytest
from tracker.api.routes import decode_cursor, encode_cursor
from tracker.config import Settings

from tests.support.keys import MemoryKeyStore
from tests.unit.tracker.fakes import PROBLEM, FakeQueries, Readiness, assert_problem, build_app, image, serve


@pytest.fixture
def repository() -> FakeQueries:
    return FakeQueries()


@pytest.fixture
def keys() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def client(repository, keys, readiness, tmp_path):
    app = build_app(repository, keys, Settings(media_dir=tmp_path / "media"), readiness=readiness)
    async with serve(app, {"Authorization": f"Bearer {keys.add('default', 'read')}"}) as client:
        yield client


async def test_status_has_exactly_the_documented_fields(client, repository):
    rid = repository.add([image(2, 0, "http://a/1.jpg", "http://o/1.jpg"), image(2, 1, "http://a/2.jpg")], 1)

    body = (await client.get(f"/status/{rid}")).json()

    assert set(body) == {
        "request_id",
        "status",
        "total_images",
        "processed_images",
        "failed_images",
        "queued_images",
        "cancelled_images",
        "progress",
        "created_at",
        "updated_at",
        "completed_at",
        "eta_seconds",
    }
    assert (body["request_id"], body["total_images"], body["processed_images"]) == (str(rid), 2, 1)
    assert body["progress"] == 0.5
    assert body["completed_at"] is None


async def test_an_unknown_request_is_a_404_problem_and_a_malformed_id_a_422_problem(client):
    for path in ("/status/{}", "/requests/{}/images", "/requests/{}/output.csv"):
        assert_problem(await client.get(path.format(uuid4())), 404)
        body = assert_problem(await client.get(path.format("not-a-uuid")), 422)
        assert body["errors"][0]["column"] == "request_id"


async def test_images_carry_every_documented_field_and_an_error_as_code_and_message(client, repository):
    failed = image(2, 1, "http://a/2.jpg", status="failed", error_code="not_an_image", error_message="HTML")
    rid = repository.add([image(2, 0, "http://a/1.jpg", "http://o/1.jpg"), failed], 1, 1, finished=True)

    items = (await client.get(f"/requests/{rid}/images")).json()["items"]

    expected = {"serial_number", "product_name", "position", "input_url", "output_url", "status", "error"}
    expected |= {"input_bytes", "output_bytes", "width", "height", "image_id", "format", "quality", "ssim"}
    assert all(set(item) == expected for item in items)
    assert items[0]["status"] == "done"
    assert items[0]["error"] is None
    assert (items[0]["output_url"], items[0]["width"], items[0]["output_bytes"]) == (
        "http://o/1.jpg",
        64,
        400,
    )
    assert items[1]["status"] == "failed"
    assert items[1]["error"] == {"code": "not_an_image", "message": "HTML"}


async def test_the_cursor_walks_every_image_once_in_input_order(client, repository):
    images = [image(row, pos, f"http://a/{row}-{pos}.jpg") for row in range(2, 9) for pos in range(3)]
    rid = repository.add(images)

    seen, cursor, pages = [], None, 0
    while pages < 20:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/requests/{rid}/images", params=params)).json()
        seen += [item["input_url"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [i.input_url for i in images]


@pytest.mark.parametrize("cursor", ["!!!", "bm90LWEtY3Vyc29y", encode_cursor(2**40, 0), "LTE6LTE="])
async def test_a_cursor_this_api_did_not_give_is_a_422_problem(client, repository, cursor):
    rid = repository.add([image(2, 0, "http://a/1.jpg")])

    body = assert_problem(await client.get(f"/requests/{rid}/images", params={"cursor": cursor}), 422)

    assert body["errors"][0]["column"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
async def test_a_limit_outside_1_to_1000_is_a_422_problem(client, repository, limit):
    rid = repository.add([image(2, 0, "http://a/1.jpg")])

    assert_problem(await client.get(f"/requests/{rid}/images", params={"limit": limit}), 422)


def test_cursors_round_trip():
    assert decode_cursor(encode_cursor(12, 3)) == (12, 3)


async def test_the_output_csv_is_a_409_problem_until_the_request_is_finished(client, repository):
    rid = repository.add([image(2, 0, "http://a/1.jpg")])

    assert_problem(await client.get(f"/requests/{rid}/output.csv"), 409)


async def test_the_output_csv_aligns_outputs_with_inputs_and_leaves_failed_slots_empty(client, repository):
    images = [
        image(2, 0, "http://a/1.jpg", "http://o/1.jpg", serial=7, name="Shirt"),
        image(2, 1, "http://a/2.jpg", status="failed", serial=7, name="Shirt"),
        image(2, 2, "http://a/3.jpg", "http://o/3.jpg", serial=7, name="Shirt"),
        image(3, 0, "http://a/4.jpg", "http://o/4.jpg", serial=8, name='Hat, "wool"'),
        image(4, 0, "http://a/5.jpg", status="failed", serial=9, name="=SUM(A1)"),
    ]
    rid = repository.add(images, 3, 2, finished=True)

    resp = await client.get(f"/requests/{rid}/output.csv")

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.text == (
        "S. No.,Product Name,Input Image Urls,Output Image Urls,Output Image Formats\r\n"
        '7,Shirt,"http://a/1.jpg,http://a/2.jpg,http://a/3.jpg","http://o/1.jpg,,http://o/3.jpg","jpeg,,jpeg"\r\n'
        '8,"Hat, ""wool""","http://a/4.jpg","http://o/4.jpg","jpeg"\r\n'
        '9,\'=SUM(A1),"http://a/5.jpg","",""\r\n'
    )
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[1][3].split(",") == ["http://o/1.jpg", "", "http://o/3.jpg"]


async def test_an_unreachable_database_is_a_503_problem(client, repository):
    repository.failure = ConnectionRefusedError(111, "refused")

    resp = await client.get(f"/status/{uuid4()}")

    assert_problem(resp, 503)
    assert resp.headers["retry-after"] == "5"


async def test_readyz_follows_the_database_and_healthz_does_not(client, readiness):
    assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok"}
    readiness.database = False

    assert_problem(await client.get("/readyz"), 503)
    assert (await client.get("/healthz")).status_code == 200


async def test_unknown_paths_methods_and_media_are_problems(client):
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.get("/media/missing.jpg"), 404)
    assert_problem(await client.post(f"/status/{uuid4()}"), 405)


async def test_openapi_and_docs_are_served_and_every_error_is_declared_as_problem_json(client):
    document = (await client.get("/openapi.json")).json()
    assert (await client.get("/docs")).status_code == 200

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert set(response["content"]) == {PROBLEM}, (method, path, status)
    assert set(
        document["paths"]["/requests/{request_id}/output.csv"]["get"]["responses"]["200"]["content"]
    ) == {"text/csv"}
