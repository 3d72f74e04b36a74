"""What every generator shares: where the files are, the generated-block markers, errors."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OPENAPI_DIR = DOCS / "openapi"
COLLECTION_DIR = DOCS / "api-collection"
POSTMAN_FILE = COLLECTION_DIR / "imgpipe.postman_collection.json"
HTTP_FILE = COLLECTION_DIR / "imgpipe.http"
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

# The marker names scripts/gen_docs.py, the command people run; this package is what it runs.
BEGIN = "<!-- BEGIN GENERATED: {name} (scripts/gen_docs.py, `make docs`; do not edit by hand) -->"
END = "<!-- END GENERATED: {name} -->"
BLOCK_RE = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED: (?P<name>[a-z0-9-]+) [^\n]*-->\n)(?P<body>.*?)(?P<end><!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)


class GenerationError(RuntimeError):
    """Something the generator needs could not be imported or built."""


def import_attribute(module: str, attribute: str) -> Any:
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise GenerationError(f"cannot import {module}.{attribute}: {exc!r}") from exc


def cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")
