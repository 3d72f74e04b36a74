"""Every generated file together: render them all, find the stale ones, write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .apps import build_apps, openapi_documents
from .blocks import replace_blocks
from .common import COLLECTION_DIR, DOCS, HTTP_FILE, OPENAPI_DIR, POSTMAN_FILE, ROOT, GenerationError
from .http_file import render_http_file
from .metrics import render_metrics
from .openapi import render_openapi
from .postman import render_postman
from .routes import render_routes
from .settings_reference import render_settings_reference
from .topics import render_topics

# Which generated blocks each page of docs/ holds.
MARKDOWN_BLOCKS: dict[str, tuple[str, ...]] = {
    "operations.md": ("settings-reference", "metrics"),
    "architecture.md": ("topics",),
    "api.md": ("routes",),
}
GENERATED_FOLDERS = (OPENAPI_DIR, COLLECTION_DIR)  # every file in them is generated


def render_all() -> dict[Path, str]:
    """Every generated file (or Markdown file with generated blocks) and its full text."""
    apps = build_apps()
    documents = openapi_documents(apps)
    routes = {name: list(app.routes) for name, app in apps.items()}
    files = render_openapi(documents)
    files[POSTMAN_FILE] = render_postman(documents)
    files[HTTP_FILE] = render_http_file(documents)
    renderers: dict[str, Callable[[], str]] = {
        "settings-reference": render_settings_reference,
        "metrics": render_metrics,
        "topics": render_topics,
        "routes": lambda: render_routes(documents, routes),
    }
    for file_name, block_names in MARKDOWN_BLOCKS.items():
        path = DOCS / file_name
        if not path.exists():
            raise GenerationError(f"{path.relative_to(ROOT)} is missing")
        blocks = {name: renderers[name]() for name in block_names}
        files[path] = replace_blocks(path.read_text(), blocks, path)
    return files


def stale(files: dict[Path, str]) -> list[str]:
    """Generated files that are missing or differ, and stray files in the generated folders."""
    out = [str(p.relative_to(ROOT)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    for folder in GENERATED_FOLDERS:
        if folder.exists():
            out += [str(p.relative_to(ROOT)) for p in sorted(folder.iterdir()) if p not in files]
    return out


def write(files: dict[Path, str]) -> list[str]:
    """Writes what changed and removes stray files of the generated folders; says what it did."""
    done = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            done.append(f"wrote {path.relative_to(ROOT)}")
    for folder in GENERATED_FOLDERS:
        for stray in sorted(folder.iterdir()):
            if stray not in files:
                stray.unlink()
                done.append(f"removed {stray.relative_to(ROOT)}")
    return done
