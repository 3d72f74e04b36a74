"""The portal: the web page and the read-only gateway to the tracker API, both on ingest's origin.

Ingest's own job is accepting uploads; the portal is what lets a browser use the pipeline from
one public origin. The page (page.py, web/) uploads through `POST /upload` and reads status,
images, the output CSV, progress events and media through the gateway (gateway.py), which
forwards each GET to the tracker API with the caller's key. One origin for everything means the
page needs no CORS; the gateway keeps no state, so any number of ingest processes can serve it.
"""

from __future__ import annotations

from fastapi import FastAPI, Security
from pipeline_runtime.api_access import BEARER

from .gateway import router as gateway_router
from .page import router as page_router


def mount_portal(app: FastAPI) -> None:
    """Add the gateway routes (in the OpenAPI document) and the page (not in it) to ingest's app."""
    # The tracker API checks the key the gateway forwards; declared here so the document says so.
    app.include_router(gateway_router, dependencies=[Security(BEARER)])
    app.include_router(page_router)
