"""Ingest's limits on the running stack (issue 12): what a hostile client sends, and what it gets.

Each case ran unbounded before: a 109 MB 422 for a wide header, 30 MB stored for a 112 KB upload,
/metrics grown to 16.5 MB by invented methods, connections held by byte-a-second clients.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

HEADER = "S. No.,Product Name,Input Image Urls"
HEADER_TIMEOUT = 10.0  # HTTP_HEADER_TIMEOUT_SECONDS' default, which the test stack keeps
MARGIN = 5.0


@pytest.fixture
async def limits_key(ingest_url, auth_headers) -> str:
    """A key of its own, so that these uploads spend no other test's rate or upload places."""
    async with httpx.AsyncClient(timeout=30, headers=auth_headers) as http:
        resp = await http.post(f"{ingest_url}/keys", json={"tenant_id": "limits-e2e", "scopes": ["upload"]})
    assert resp.status_code == 201, resp.text
    return resp.json()["key"]


async def post_csv(ingest_url: str, key: str, csv: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
        return await http.post(f"{ingest_url}/upload", files={"file": ("p.csv", csv, "text/csv")})


async def test_a_million_column_header_is_a_small_422(ingest_url, limits_key):
    resp = await post_csv(
        ingest_url, limits_key, (HEADER + ",x" * 1_000_000 + "\n1,a,http://127.0.0.1:9/a\n").encode()
    )

    assert resp.status_code == 422
    assert len(resp.content) < 4096
    assert "1000003 columns" in resp.json()["errors"][0]["message"]


async def test_a_huge_name_over_many_urls_is_refused_naming_the_row(ingest_url, limits_key):
    urls = ",".join(f"http://127.0.0.1:9/{n}.jpg" for n in range(300))

    resp = await post_csv(ingest_url, limits_key, f'{HEADER}\n1,{"n" * 100_000},"{urls}"\n'.encode())

    assert resp.status_code == 422
    assert {(e["row"], e["column"]) for e in resp.json()["errors"]} == {
        (2, "Product Name"),
        (2, "Input Image Urls"),
    }


async def test_two_file_parts_in_one_upload_are_refused_with_400(ingest_url, limits_key):
    first = f"{HEADER}\n1,First,http://127.0.0.1:9/a.jpg\n".encode()
    second = f"{HEADER}\n1,Second,http://127.0.0.1:9/b.jpg\n".encode()
    files = [("file", ("a.csv", first, "text/csv")), ("file", ("b.csv", second, "text/csv"))]
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {limits_key}"}) as http:
        resp = await http.post(f"{ingest_url}/upload", files=files)

    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "one `file`" in resp.json()["detail"]


async def test_invented_methods_do_not_grow_the_metrics(ingest_url):
    async with httpx.AsyncClient(timeout=30) as http:
        await http.request("PRIMER", f"{ingest_url}/healthz")
        before = len((await http.get(f"{ingest_url}/metrics")).content)
        for n in range(200):
            await http.request(f"INVENTED{n}", f"{ingest_url}/healthz")
            await http.request(f"INVENTED{n}", f"{ingest_url}/no/such/{n}")
        after = len((await http.get(f"{ingest_url}/metrics")).content)

    assert after - before < 20_000  # a few new series at most, never one per method or path


async def test_a_byte_a_second_header_is_cut_off_within_the_header_timeout(ingest_url):
    port = int(ingest_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)
            if reader.at_eof() or time.monotonic() - started > HEADER_TIMEOUT + MARGIN:
                break
    except ConnectionError:
        pass  # cut off under us
    answer = await asyncio.wait_for(reader.read(), MARGIN)
    writer.close()

    assert answer == b""
    assert time.monotonic() - started < HEADER_TIMEOUT + MARGIN


async def test_a_keys_fifth_upload_in_progress_is_429(ingest_url, limits_key):
    port = int(ingest_url.rsplit(":", 1)[1])
    body = (
        '--b0\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{HEADER}\n1,a,http://127.0.0.1:9/a.jpg\n\r\n--b0--\r\n"
    ).encode()

    def head(length: int) -> bytes:
        return (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {limits_key}\r\n"
            f"Content-Type: multipart/form-data; boundary=b0\r\nContent-Length: {length}\r\n\r\n"
        ).encode()

    held = []
    for _ in range(4):  # INGEST_MAX_CONCURRENT_UPLOADS_PER_KEY's default: bodies that never finish
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head(len(body) + 10_000) + body)
        await writer.drain()
        held.append(writer)
    await asyncio.sleep(1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head(len(body)) + body)
    await writer.drain()
    fifth = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
    writer.close()
    for held_writer in held:
        held_writer.close()

    assert fifth.startswith(b"HTTP/1.1 429"), fifth
