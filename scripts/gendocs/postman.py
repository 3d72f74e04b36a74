"""docs/api-collection/imgpipe.postman_collection.json: the API collection as Postman v2.1."""

from __future__ import annotations

import json
from typing import Any

from .apps import HTTP_SERVICES
from .collection import collection_items, collection_variables, path_with_variables
from .common import POSTMAN_SCHEMA


def render_postman(documents: dict[str, dict[str, Any]]) -> str:
    folders = []
    items = collection_items(documents)
    for service in HTTP_SERVICES:
        requests = []
        for item in (i for i in items if i["service"] is service):
            url_path = path_with_variables(item["path"])
            query = [{k: q[k] for k in ("key", "value", "disabled", "description")} for q in item["query"]]
            raw = "{{" + service.url_variable + "}}" + url_path
            enabled = [q for q in query if not q["disabled"]]
            if enabled:
                raw += "?" + "&".join(f"{q['key']}={q['value']}" for q in enabled)
            request: dict[str, Any] = {
                "method": item["method"],
                "header": [
                    {k: h[k] for k in ("key", "value", "disabled", "description")} for h in item["headers"]
                ],
                "url": {
                    "raw": raw,
                    "host": ["{{" + service.url_variable + "}}"],
                    "path": [p for p in url_path.split("/") if p],
                    **({"query": query} if query else {}),
                },
                "description": item["description"],
            }
            if item["media_type"] == "multipart/form-data":
                request["body"] = {"mode": "formdata", "formdata": item["body"]}
            elif item["media_type"] == "application/json":
                request["header"].append({"key": "Content-Type", "value": "application/json"})
                request["body"] = {
                    "mode": "raw",
                    "raw": json.dumps(item["body"], indent=2),
                    "options": {"raw": {"language": "json"}},
                }
            requests.append({"name": item["name"], "request": request})
        folders.append(
            {
                "name": service.title,
                "description": f"Generated from docs/openapi/{service.name}.json.",
                "item": requests,
            }
        )
    collection = {
        "info": {
            "name": "imgpipe",
            "description": (
                "Every route of the imgpipe HTTP services, generated from their OpenAPI documents by "
                "scripts/gen_docs.py (`make docs`). Do not edit: regenerate."
            ),
            "schema": POSTMAN_SCHEMA,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{api_key}}", "type": "string"}]},
        "variable": [
            {"key": name, "value": value, "description": description}
            for name, value, description in collection_variables(documents)
        ],
        "item": folders,
    }
    return json.dumps(collection, indent=2, ensure_ascii=False) + "\n"
