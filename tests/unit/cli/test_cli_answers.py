"""What the CLI's API client accepts from the services: a JSON object, or it says the answer is wrong."""

from __future__ import annotations

import httpx
import pytest
from imgpipe_cli.api import Connection, PipelineApi
from imgpipe_cli.outcome import CliError


def api_answering(body: bytes) -> PipelineApi:
    def handle(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return PipelineApi(
        Connection("http://127.0.0.1:1", "http://127.0.0.1:2", transport=httpx.MockTransport(handle))
    )


async def test_a_status_object_is_returned_as_it_came():
    async with api_answering(b'{"status": "completed"}') as api:
        assert await api.status("r1") == {"status": "completed"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"not json"])
async def test_an_answer_that_is_not_a_json_object_is_a_clear_error(body):
    async with api_answering(body) as api:
        with pytest.raises(CliError, match="did not answer with a JSON object"):
            await api.status("r1")
