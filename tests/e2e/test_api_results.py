"""Reading results on the whole running pipeline: status, images, output CSV, and no 404 window."""

from __future__ import annotations

import contextlib
import csv
import io
import uuid

import httpx
import pytest

from tests.support.images import photo_jpeg
from tests.support.servers import held, serving, wait_until

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
HELD_SECONDS = 20.0  # the held image is released by the test, or after this at the latest


@pytest.fixture
async def image_host():
    pictures = {f"{n}.jpg": photo_jpeg(200 + 40 * n, 150 + 20 * n, seed=n) for n in range(6)}
    async with serving(pictures) as server:
        server.routes["held.jpg"] = held(pictures["0.jpg"], server.release, at_most=HELD_SECONDS)
        yield server


@pytest.fixture
async def http(auth_headers):
    # The key is sent so these tests keep working once the APIs require one.
    async with httpx.AsyncClient(timeout=30, headers=auth_headers) as client:
        yield client


async def upload(http: httpx.AsyncClient, ingest_url: str, csv_text: str) -> dict:
    files = {"file": ("products.csv", csv_text.encode(), "text/csv")}
    resp = await http.post(f"{ingest_url}/upload", files=files)
    assert resp.status_code == 202, resp.text
    return resp.json()


async def wait_finished(http: httpx.AsyncClient, status_url: str, timeout: float = 90) -> dict:
    latest: dict = {}

    async def finished() -> bool:
        resp = await http.get(status_url)
        latest.update(resp.json() if resp.status_code == 200 else {})
        return latest.get("completed_at") is not None

    assert await wait_until(finished, timeout=timeout), f"not finished in {timeout}s: {latest}"
    return latest


async def all_images(http: httpx.AsyncClient, tracker_url: str, request_id: str) -> list[dict]:
    items, cursor = [], None
    for _ in range(50):  # bounded: 2 per page
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(f"{tracker_url}/requests/{request_id}/images", params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_a_status_request_right_after_the_202_never_answers_404(http, ingest_url, image_host):
    answers = []
    for n in range(12):
        accepted = await upload(
            http,
            ingest_url,
            f"S. No.,Product Name,Input Image Urls\n{n},Item {n},{image_host.url('1.jpg')}\n",
        )
        resp = await http.get(accepted["status_url"])
        answers.append((resp.status_code, resp.json().get("request_id") == accepted["request_id"]))

    assert answers == [(200, True)] * 12


async def test_status_images_and_output_csv_follow_a_request_with_a_failed_image(
    http, ingest_url, tracker_url, image_host
):
    u = image_host.url
    text = "S. No.,Product Name,Input Image Urls\n"
    text += f"10,Shirt,{u('1.jpg')},{u('missing.jpg')},{u('2.jpg')}\n"  # unquoted: three URLs
    text += f'11,"Hat, wool","{u("3.jpg")}"\n'
    text += f"12,Lamp,{u('held.jpg')}\n"
    accepted = await upload(http, ingest_url, text)
    rid = accepted["request_id"]
    assert (accepted["total_products"], accepted["total_images"]) == (3, 5)

    unfinished = await http.get(f"{tracker_url}/requests/{rid}/output.csv")
    status_while_held = (await http.get(accepted["status_url"])).json()
    image_host.release.set()
    status = await wait_finished(http, accepted["status_url"])
    images = await all_images(http, tracker_url, rid)
    output = await http.get(accepted["output_csv_url"])

    assert unfinished.status_code == 409
    assert unfinished.headers["content-type"] == PROBLEM
    assert status_while_held["completed_at"] is None
    assert status_while_held["status"] in ("pending", "processing")
    assert status["status"] == "completed_with_errors"
    assert (status["processed_images"], status["failed_images"], status["progress"]) == (4, 1, 1.0)

    assert [(i["serial_number"], i["position"], i["input_url"]) for i in images] == [
        (10, 0, u("1.jpg")),
        (10, 1, u("missing.jpg")),
        (10, 2, u("2.jpg")),
        (11, 0, u("3.jpg")),
        (12, 0, u("held.jpg")),
    ]
    failed = images[1]
    assert (failed["status"], failed["output_url"], failed["error"]["code"]) == ("failed", None, "http_error")
    assert failed["error"]["message"]
    done = [i for i in images if i is not failed]
    assert all(i["status"] == "done" and i["error"] is None for i in done)
    assert all(i["output_url"] and i["output_bytes"] > 0 and i["input_bytes"] > 0 for i in done)
    assert [(i["width"], i["height"]) for i in done] == [(240, 170), (280, 190), (320, 210), (200, 150)]

    assert output.status_code == 200
    assert output.headers["content-type"].startswith("text/csv")
    lines = output.text.split("\r\n")
    assert lines[0] == "S. No.,Product Name,Input Image Urls,Output Image Urls,Output Image Formats"
    out = [i["output_url"] for i in images]
    assert lines[1:] == [
        f'10,Shirt,"{u("1.jpg")},{u("missing.jpg")},{u("2.jpg")}","{out[0]},,{out[2]}","jpeg,,jpeg"',
        f'11,"Hat, wool","{u("3.jpg")}","{out[3]}","jpeg"',
        f'12,Lamp,"{u("held.jpg")}","{out[4]}","jpeg"',
        "",
    ]
    rows = list(csv.reader(io.StringIO(output.text)))
    assert [len(r[2].split(",")) == len(r[3].split(",")) for r in rows[1:]] == [True] * 3


async def test_a_request_whose_every_image_fails_is_failed_with_an_empty_output_slot(
    http, ingest_url, image_host
):
    text = f"S. No.,Product Name,Input Image Urls\n1,Gone,{image_host.url('gone-1.jpg')},{image_host.url('gone-2.jpg')}\n"
    accepted = await upload(http, ingest_url, text)

    status = await wait_finished(http, accepted["status_url"])
    output = (await http.get(accepted["output_csv_url"])).text

    assert (status["status"], status["failed_images"], status["processed_images"]) == ("failed", 2, 0)
    assert output.split("\r\n")[1].endswith(',","')


async def test_unknown_and_malformed_request_ids_are_404_and_422_problems(http, tracker_url):
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in ("status/{}", "requests/{}/images", "requests/{}/output.csv"):
        missing = await http.get(f"{tracker_url}/{path.format(unknown)}")
        malformed = await http.get(f"{tracker_url}/{path.format('12345')}")
        assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
        assert (malformed.status_code, malformed.headers["content-type"]) == (422, PROBLEM)


async def test_a_product_name_with_a_newline_and_a_formula_stays_one_neutralised_record(
    http, ingest_url, tracker_url, image_host
):
    """Issue 12, defect 1: the name after the line break must not start a record, nor a formula."""
    u = image_host.url
    attack = "x\n=cmd|' /C calc'!A0"
    text = "S. No.,Product Name,Input Image Urls\r\n"
    text += f'1,"{attack}","{u("1.jpg")},{u("2.jpg")}"\r\n'
    text += f'2,"crlf\r\n+1","{u("3.jpg")}"\r\n'
    text += f"3,Hat,{u('4.jpg')}\r\n"
    accepted = await upload(http, ingest_url, text)
    await wait_finished(http, accepted["status_url"])

    output = await http.get(f"{tracker_url}/requests/{accepted['request_id']}/output.csv")

    assert output.status_code == 200, output.text
    rows = list(csv.reader(io.StringIO(output.text, newline="")))
    assert [len(r) for r in rows] == [5, 5, 5, 5]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert [r[1] for r in rows[1:]] == ["x\n'=cmd|' /C calc'!A0", "crlf\r\n'+1", "Hat"]
    assert [r[2] for r in rows[1:]] == [f"{u('1.jpg')},{u('2.jpg')}", u("3.jpg"), u("4.jpg")]
    assert all(len(r[3].split(",")) == len(r[2].split(",")) and "" not in r[3].split(",") for r in rows[1:])
    formula_starts = ("=", "+", "-", "@", "\t", "\r")
    assert not [line for line in output.text.splitlines() if line.startswith(formula_starts)]


async def new_read_key(http: httpx.AsyncClient, ingest_url: str, tenant: str) -> dict[str, str]:
    resp = await http.post(f"{ingest_url}/keys", json={"tenant_id": tenant, "scopes": ["read", "upload"]})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['key']}"}


async def test_one_key_cannot_hold_more_progress_streams_than_its_cap_and_reads_keep_answering(
    http, ingest_url, tracker_url, image_host
):
    """Issue 12, defect 5 on the tracker API: beyond TRACKER_EVENTS_MAX_PER_KEY (4) streams, 429."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    hog, neighbour = [await new_read_key(http, ingest_url, tenant) for _ in range(2)]
    other = await new_read_key(http, ingest_url, f"t-{uuid.uuid4().hex[:10]}")
    rows = f"S. No.,Product Name,Input Image Urls\n1,Lamp,{image_host.url('held.jpg')}\n"
    held = (
        await http.post(f"{ingest_url}/upload", files={"file": ("p.csv", rows.encode())}, headers=hog)
    ).json()
    mine = (
        await http.post(f"{ingest_url}/upload", files={"file": ("p.csv", rows.encode())}, headers=other)
    ).json()
    events = f"{tracker_url}/requests/{held['request_id']}/events"

    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=20)) as streams:
        async with contextlib.AsyncExitStack() as stack:
            opened = [await open_stream(stack, streams, events, hog) for _ in range(4)]
            refused = await streams.get(events, headers=hog)
            neighbours = await open_stream(stack, streams, events, neighbour)
            reads = [await streams.get(mine["status_url"], headers=other) for _ in range(10)]
    image_host.release.set()

    assert opened == [200] * 4
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.headers["retry-after"]
    assert neighbours == 200  # the cap is the key's; the tenant's (16) is not reached
    assert [r.status_code for r in reads] == [200] * 10


async def open_stream(stack: contextlib.AsyncExitStack, http: httpx.AsyncClient, url: str, headers) -> int:
    """Open a progress stream and keep it open (in `stack`); its status, after the first event if 200."""
    resp = await stack.enter_async_context(http.stream("GET", url, headers=headers))
    if resp.status_code == 200:
        lines = resp.aiter_lines()
        stack.push_async_callback(lines.aclose)  # closing the iterator would close the connection
        async for line in lines:
            if line.startswith("event: progress"):
                break
    return resp.status_code
