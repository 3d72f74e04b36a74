"""Hostile cases ingest answers at the door: oversized or malformed uploads, slow and odd clients."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from tests.security.cases import Outcome, case
from tests.security.stage import Stage
from tests.support.api import csv_of

HEADER = "S. No.,Product Name,Input Image Urls"
HEADER_TIMEOUT = 10.0  # HTTP_HEADER_TIMEOUT_SECONDS' default, which the test stack keeps
MARGIN = 5.0


async def post_file(stage: Stage, headers: dict[str, str], body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        return await http.post(f"{stage.ingest}/upload", files={"file": ("p.csv", body, "text/csv")})


def rows_named(resp: httpx.Response) -> set[tuple[int | None, str | None]]:
    return {(e.get("row"), e.get("column")) for e in resp.json().get("errors", [])}


@case("header with 100,000 unknown columns (and one with 250)", "small 422s; 100 listed + errors_omitted")
async def case_wide_header(stage: Stage) -> Outcome:
    key = await stage.new_key()
    row = "\n1,a,http://127.0.0.1:9/a\n"
    huge = await post_file(stage, key["headers"], (HEADER + ",x" * 100_000 + row).encode())
    wide = await post_file(stage, key["headers"], (HEADER + ",x" * 250 + row).encode())
    listed, omitted = len(wide.json().get("errors", [])), wide.json().get("errors_omitted")
    ok = (
        huge.status_code == wide.status_code == 422
        and len(huge.content) < 4096
        and len(wide.content) < 65_536
        and (listed, omitted) == (100, 150)
    )
    return Outcome(
        f"{huge.status_code} of {len(huge.content)} B; 250 columns: {wide.status_code} of {len(wide.content)} B, "
        f"{listed} listed, errors_omitted={omitted}",
        ok,
    )


@case("product name of 1,025 characters", "422 naming row 2, Product Name")
async def case_long_name(stage: Stage) -> Outcome:
    key = await stage.new_key()
    resp = await post_file(stage, key["headers"], csv_of([(1, "n" * 1025, ["http://127.0.0.1:9/a.jpg"])]))
    named = rows_named(resp) if resp.status_code == 422 else set()
    return Outcome(f"{resp.status_code}, errors at {sorted(named)}", named == {(2, "Product Name")})


@case("101 URLs in one row", "422 naming row 2, Input Image Urls")
async def case_many_urls(stage: Stage) -> Outcome:
    key = await stage.new_key()
    urls = [f"http://127.0.0.1:9/{n}.jpg" for n in range(101)]
    resp = await post_file(stage, key["headers"], csv_of([(1, "Lamp", urls)]))
    named = rows_named(resp) if resp.status_code == 422 else set()
    return Outcome(f"{resp.status_code}, errors at {sorted(named)}", named == {(2, "Input Image Urls")})


@case("host name label of 64 characters", "422 naming row 2, Input Image Urls")
async def case_long_label(stage: Stage) -> Outcome:
    key = await stage.new_key()
    resp = await post_file(stage, key["headers"], csv_of([(1, "Lamp", [f"http://{'a' * 64}.test/x.jpg"])]))
    named = rows_named(resp) if resp.status_code == 422 else set()
    return Outcome(f"{resp.status_code}, errors at {sorted(named)}", named == {(2, "Input Image Urls")})


@case("200 invented HTTP methods (and unmatched paths)", "/metrics of ingest grows < 8 KB")
async def case_invented_methods(stage: Stage) -> Outcome:
    async with httpx.AsyncClient(timeout=30) as http:
        await http.request("PRIMER", f"{stage.ingest}/healthz")
        before = len((await http.get(f"{stage.ingest}/metrics")).content)
        for n in range(200):
            await http.request(f"INVENTED{n}", f"{stage.ingest}/healthz")
            await http.request(f"INVENTED{n}", f"{stage.ingest}/no/such/{n}")
        after = len((await http.get(f"{stage.ingest}/metrics")).content)
    return Outcome(f"{before} B -> {after} B (+{after - before})", after - before < 8192)


@case("client sends its headers one byte a second", f"cut off within {HEADER_TIMEOUT:.0f} s (+{MARGIN:.0f})")
async def case_slow_headers(stage: Stage) -> Outcome:
    reader, writer = await asyncio.open_connection("127.0.0.1", stage.ingest_port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):  # cut off under us
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)
            if reader.at_eof() or time.monotonic() - started > HEADER_TIMEOUT + MARGIN:
                break
    answer = await asyncio.wait_for(reader.read(), MARGIN)
    writer.close()
    held = time.monotonic() - started
    ok = answer == b"" and held < HEADER_TIMEOUT + MARGIN
    return Outcome(f"closed after {held:.1f} s with {len(answer)} B answered", ok)


@case("5 uploads of one key in progress at once", "the 5th is 429 (INGEST_MAX_CONCURRENT_UPLOADS_PER_KEY=4)")
async def case_concurrent_uploads(stage: Stage) -> Outcome:
    key = await stage.new_key()
    body = (
        '--b0\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{HEADER}\n1,a,http://127.0.0.1:9/a.jpg\n\r\n--b0--\r\n"
    ).encode()

    def head(length: int) -> bytes:
        return (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key['headers']['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary=b0\r\nContent-Length: {length}\r\n\r\n"
        ).encode()

    held = []
    try:
        for _ in range(4):  # bodies that never finish
            _, writer = await asyncio.open_connection("127.0.0.1", stage.ingest_port)
            writer.write(head(len(body) + 10_000) + body)
            await writer.drain()
            held.append(writer)
        await asyncio.sleep(1)
        reader, writer = await asyncio.open_connection("127.0.0.1", stage.ingest_port)
        writer.write(head(len(body)) + body)
        await writer.drain()
        fifth = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        writer.close()
    finally:
        for held_writer in held:
            held_writer.close()
    status = fifth.split(b"\r\n", 1)[0].decode()
    return Outcome(status, fifth.startswith(b"HTTP/1.1 429"))


@case("two `file` parts in one upload", "400")
async def case_two_file_parts(stage: Stage) -> Outcome:
    key = await stage.new_key()
    body = csv_of([(1, "Lamp", [stage.host.url("a.jpg")])])
    parts = [("file", ("a.csv", body, "text/csv")), ("file", ("b.csv", body, "text/csv"))]
    async with httpx.AsyncClient(timeout=30, headers=key["headers"]) as http:
        resp = await http.post(f"{stage.ingest}/upload", files=parts)
    return Outcome(f"{resp.status_code} {resp.json().get('title', '')}", resp.status_code == 400)
