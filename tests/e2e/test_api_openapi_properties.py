"""Property-based run over the OpenAPI documents of ingest and the tracker API (schemathesis).

Each documented operation of the running services gets schema-valid and schema-violating
requests (its examples, boundary values and fuzzed ones). Every answer must be documented: no
5xx, a declared status code, the declared media type, and a body that matches its schema.
Bounded: 60 generated cases per operation, about ten seconds in all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def documents() -> tuple[dict, dict]:
    """The OpenAPI documents as the services build them (no connection is made to build one)."""
    from ingest.app import create_app
    from ingest.config import Settings as IngestSettings
    from tracker.api import create_app as create_tracker_app
    from tracker.config import Settings as TrackerSettings

    media = Path(tempfile.gettempdir()) / "imgpipe-openapi-media"
    return create_app(IngestSettings()).openapi(), create_tracker_app(
        TrackerSettings(media_dir=media)
    ).openapi()


INGEST_DOCUMENT, TRACKER_DOCUMENT = documents()
ingest_api = schemathesis.openapi.from_dict(INGEST_DOCUMENT)
tracker_api = schemathesis.openapi.from_dict(TRACKER_DOCUMENT)


async def test_the_running_services_serve_these_documents(ingest_url, tracker_url):
    async with httpx.AsyncClient(timeout=10) as http:
        served = [(await http.get(f"{url}/openapi.json")).json() for url in (ingest_url, tracker_url)]

    assert served == [INGEST_DOCUMENT, TRACKER_DOCUMENT]


@ingest_api.parametrize()
@FUZZ
def test_ingest_answers_every_generated_request_as_its_openapi_document_says(case, ingest_url, auth_headers):
    case.call_and_validate(base_url=ingest_url, checks=CHECKS, headers=auth_headers, timeout=30)


@tracker_api.parametrize()
@FUZZ
def test_the_tracker_api_answers_every_generated_request_as_its_openapi_document_says(
    case, tracker_url, auth_headers
):
    case.call_and_validate(base_url=tracker_url, checks=CHECKS, headers=auth_headers, timeout=30)
