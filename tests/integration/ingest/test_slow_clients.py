"""Slow clients against ingest behind a real uvicorn server on loopback (pipeline_runtime.serving).

Before, uvicorn bounded only the idle time between requests: 100 connections sending headers a
byte at a time and 20 slow upload bodies were all held for 60 s and more.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from ingest.app import create_app
from pipeline_runtime.auth import new_api_key
from pipeline_runtime.serving import ServingSettings

from tests.integration.ingest.support import HEADER, ingest_settings, served

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
MARGIN = 4.0  # scheduling on a loaded 2-core machine; far below the minutes it used to take


@pytest.fixture
async def ingest_server(fresh_database_url, bootstrap_servers):
    key = new_api_key()
    settings = ingest_settings(fresh_database_url, bootstrap_servers, key, max_concurrent_uploads_per_key=2)
    serving = ServingSettings(header_timeout_seconds=HEADER_TIMEOUT, body_timeout_seconds=BODY_TIMEOUT)
    async with served(create_app(settings), serving) as port:
        yield port, key


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent until it closed the connection; fails if it is still open after `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


def upload_head(key: str | None, length: int, boundary: str = "b0undary") -> bytes:
    lines = [
        "POST /upload HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        f"Content-Length: {length}",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def multipart(csv: str, boundary: str = "b0undary") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    ).encode()


async def test_a_client_sending_its_headers_a_byte_a_second_is_disconnected(ingest_server):
    port, _ = ingest_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    sent = 0
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(1)
            if reader.at_eof() or time.monotonic() - started > HEADER_TIMEOUT + MARGIN:
                break
    except ConnectionError:
        pass  # the server closed it under us: what is expected
    answer = await closed_within(reader, MARGIN)
    writer.close()

    assert sent < len(request)
    assert answer == b""  # cut off: there is no request to answer yet
    assert time.monotonic() - started < HEADER_TIMEOUT + MARGIN


@pytest.mark.parametrize("with_key", [True, False])
async def test_a_slow_upload_body_is_cut_after_the_body_timeout_with_a_408(ingest_server, with_key):
    port, key = ingest_server
    body = multipart(f"{HEADER}\n1,Shirt,http://127.0.0.1:9/a.jpg\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upload_head(key if with_key else None, len(body) + 10_000))
    writer.write(body[:20])
    await writer.drain()
    started = time.monotonic()

    answer = await closed_within(reader, BODY_TIMEOUT + MARGIN)
    writer.close()

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert json.loads(payload)["type"].endswith("/body-timeout")
    assert BODY_TIMEOUT - 0.5 < time.monotonic() - started < BODY_TIMEOUT + MARGIN


async def test_a_keys_third_concurrent_upload_is_429_while_two_are_in_progress(
    fresh_database_url, bootstrap_servers
):
    key = new_api_key()
    settings = ingest_settings(fresh_database_url, bootstrap_servers, key, max_concurrent_uploads_per_key=2)
    serving = ServingSettings(header_timeout_seconds=HEADER_TIMEOUT, body_timeout_seconds=60)
    async with served(create_app(settings), serving) as port:
        body = multipart(f"{HEADER}\n1,Shirt,http://127.0.0.1:9/a.jpg\n")
        held = []
        for _ in range(2):  # two uploads whose bodies never finish
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(upload_head(key, len(body) + 10_000) + body)
            await writer.drain()
            held.append((reader, writer))
        await asyncio.sleep(1)  # both admitted by the gate and reading their bodies
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upload_head(key, len(body)) + body)
        await writer.drain()
        third = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        for _, held_writer in held:
            held_writer.close()
        await asyncio.sleep(0.5)  # the held uploads end: their places are given back
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upload_head(key, len(body)) + body)
        await writer.drain()
        after = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        writer.close()

    assert third.startswith(b"HTTP/1.1 429"), third
    assert after.startswith(b"HTTP/1.1 202"), after
