"""Writes the generated parts of docs/ from the code (run by `make docs`: scripts/gen_docs.py).

One module per generated document, all derived from the code as it is now:

- openapi.py: docs/openapi/<service>.json, the OpenAPI document of each HTTP service, built by
  the service's own app factory without starting a server or connecting anywhere (apps.py);
- postman.py and http_file.py: docs/api-collection/, an API collection built from those
  documents (a Postman v2.1 collection and an HTTP-file collection for VS Code REST Client /
  JetBrains HTTP Client), both written from collection.py's items;
- the blocks between `<!-- BEGIN GENERATED: name ... -->` and `<!-- END GENERATED: name -->`
  in docs/*.md (blocks.py): the settings reference (settings_reference.py, every
  pydantic-settings class in services/*/src/*/config.py), the route index (routes.py), the
  topic table (topics.py) and the metric list (metrics.py).

`--check` writes nothing and exits 1 when a committed file differs from what would be written.
The tests in tests/unit/docs call `render_all()` and compare the same way (`stale`).
"""

from __future__ import annotations

from .apps import HTTP_SERVICES, HttpService, operations
from .assemble import render_all, stale, write
from .common import (
    BLOCK_RE,
    HTTP_FILE,
    OPENAPI_DIR,
    POSTMAN_FILE,
    POSTMAN_SCHEMA,
    ROOT,
    GenerationError,
)
from .metrics import metric_families
from .routes import route_heading
from .settings_reference import render_settings_reference, settings_docs, settings_env_names

__all__ = [
    "BLOCK_RE",
    "HTTP_FILE",
    "HTTP_SERVICES",
    "OPENAPI_DIR",
    "POSTMAN_FILE",
    "POSTMAN_SCHEMA",
    "ROOT",
    "GenerationError",
    "HttpService",
    "metric_families",
    "operations",
    "render_all",
    "render_settings_reference",
    "route_heading",
    "settings_docs",
    "settings_env_names",
    "stale",
    "write",
]
