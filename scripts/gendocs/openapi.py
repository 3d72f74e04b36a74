"""docs/openapi/<service>.json: each HTTP service's OpenAPI document, as its app serves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import OPENAPI_DIR


def render_openapi(documents: dict[str, dict[str, Any]]) -> dict[Path, str]:
    """One file per service, keyed by its path."""
    return {
        OPENAPI_DIR / f"{name}.json": json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        for name, document in documents.items()
    }
