"""The web page at `/`: upload a CSV, watch its progress, browse before/after images.

Plain HTML, CSS and JavaScript shipped inside the package (`ingest/portal/web/`), nothing loaded from
elsewhere, so the page works offline. Its data comes from this service: `POST /upload` and the
read-only gateway routes (portal/gateway.py), each called with the API key pasted into the page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pipeline_runtime.httpkit import problem

WEB_DIR = Path(__file__).resolve().parent / "web"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
# Scripts and styles of our own only, no inline code; images also from the URLs of the uploaded
# CSV (the "before" pictures) and from data: URLs (the "after" pictures, fetched with the key).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' http: https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated (ETag) on every load, so a new version shows at once
}

router = APIRouter()


def page_file(name: str, media_type: str) -> Response:
    return FileResponse(WEB_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
async def index() -> Response:
    """The page itself."""
    return page_file("index.html", "text/html; charset=utf-8")


@router.get("/assets/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    """The page's script and stylesheet (a fixed list: nothing else of the disk is reachable)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return problem(404, "not-found", "Not Found", "no such asset")
    return page_file(name, media_type)
