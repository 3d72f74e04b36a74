"""The gateway under many progress streams, on loopback: ingest and a stand-in tracker API behind
real uvicorn servers, so the connection pools are real ones.

Before, 200 open streams by one tenant took the gateway's whole pool and every other read got 504.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import httpx
from ingest.app import create_app
from pipeline_runtime.auth import new_api_key
from pipeline_runtime.serving import ServingSettings
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.integration.ingest.support import ingest_settings, served


def stand_in_tracker(stop: asyncio.Event) -> Starlette:
    """Answers status reads at once; holds every event stream open until `stop`."""

    async def status(request):
        return JSONResponse({"request_id": request.path_params["rid"], "status": "processing"})

    async def events(request):
        async def stream():
            yield b": keep-alive\n\n"
            await stop.wait()

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/status/{rid}", status), Route("/requests/{rid}/events", events)])


async def test_open_streams_never_take_the_connections_of_plain_reads(fresh_database_url, bootstrap_servers):
    stop = asyncio.Event()
    key = new_api_key()
    serving = ServingSettings(header_timeout_seconds=10, body_timeout_seconds=30)
    async with served(stand_in_tracker(stop), serving) as tracker_port:
        settings = ingest_settings(
            fresh_database_url,
            bootstrap_servers,
            key,
            gateway_read_connections=2,
            gateway_max_streams=4,
            gateway_max_streams_per_tenant=100,
            gateway_max_streams_per_key=100,
        ).model_copy(update={"status_base_url": f"http://127.0.0.1:{tracker_port}"})
        async with served(create_app(settings), serving) as port:
            headers = {"Authorization": f"Bearer {key}"}
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(
                base_url=base, headers=headers, timeout=20, trust_env=False
            ) as client:
                streams = [
                    await client.send(client.build_request("GET", f"/requests/{uuid4()}/events"), stream=True)
                    for _ in range(5)
                ]
                reads = await asyncio.gather(*(client.get(f"/status/{uuid4()}") for _ in range(6)))
                statuses = [s.status_code for s in streams]
                refused = await streams[-1].aread()
                for stream in streams:
                    await stream.aclose()
            stop.set()

    assert statuses == [200, 200, 200, 200, 503]
    assert b"streams-busy" in refused
    assert [r.status_code for r in reads] == [200] * 6
