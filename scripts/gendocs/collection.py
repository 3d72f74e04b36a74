"""The API collection's content: one entry per operation, with example bodies, queries and variables.

Both collection formats (postman.py, http_file.py) are written from `collection_items`.
"""

from __future__ import annotations

import re
from typing import Any

from .apps import HTTP_SERVICES, default_port, operations


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        target: Any = document
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _non_null(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(schema, document)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(s, document) for s in schema[key] if s.get("type") != "null"]
            if options:
                merged = {k: v for k, v in schema.items() if k != key}
                return {**options[0], **merged}
    return schema


def _is_file(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and (
        schema.get("format") == "binary" or "contentMediaType" in schema
    )


def example_value(name: str, schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> Any:
    """A plausible example for a JSON Schema (defaults first; URLs for *url fields)."""
    raw = _resolve(schema, document)
    if "default" in raw:
        return raw["default"]
    schema = _non_null(schema, document)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" and depth < 4:
        return {
            key: example_value(key, sub, document, depth + 1)
            for key, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [example_value(name, schema.get("items", {}), document, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if name.endswith("url"):
        return "https://example.com/webhooks/imgpipe"
    return "string"


def path_with_variables(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", r"{{\1}}", path)


def _body_of(op: dict[str, Any], document: dict[str, Any]) -> tuple[str | None, Any]:
    """(media type, example) of an operation's request body."""
    content = op.get("requestBody", {}).get("content", {})
    for media_type, spec in content.items():
        schema = _resolve(spec.get("schema", {}), document)
        if media_type == "multipart/form-data":
            fields = []
            for key, sub in schema.get("properties", {}).items():
                sub = _non_null(sub, document)
                required = key in schema.get("required", [])
                if _is_file(sub):
                    fields.append({"key": key, "type": "file", "src": "products.csv"})
                else:
                    value = sub.get("default")  # optional fields without a default are left for the user
                    fields.append(
                        {
                            "key": key,
                            "type": "text",
                            "value": "" if value is None else str(value),
                            "disabled": not required and key != "file",
                            "description": sub.get("description", ""),
                        }
                    )
            return media_type, fields
        return media_type, example_value("body", schema, document)
    return None, None


def _query_of(op: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for param in op.get("parameters", []):
        if param.get("in") != "query":
            continue
        schema = _non_null(param.get("schema", {}), document)
        has_default = "default" in schema
        out.append(
            {
                "key": param["name"],
                "value": str(schema["default"]) if has_default else "",
                "disabled": not (param.get("required") or has_default),
                "description": param.get("description", "") or schema.get("description", ""),
            }
        )
    return out


def _headers_of(op: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for param in op.get("parameters", []):
        if param.get("in") != "header":
            continue
        schema = param.get("schema", {})
        out.append(
            {
                "key": schema.get("title") or param["name"],
                "value": "",
                "disabled": not param.get("required", False),
                "description": param.get("description", ""),
            }
        )
    return out


def collection_items(documents: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per operation: what both collection formats are written from."""
    items = []
    for service in HTTP_SERVICES:
        document = documents[service.name]
        for method, path, op in operations(document):
            media_type, body = _body_of(op, document)
            items.append(
                {
                    "service": service,
                    "method": method.upper(),
                    "path": path,
                    "name": f"{method.upper()} {path}",
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "query": _query_of(op, document),
                    "headers": _headers_of(op, document),
                    "media_type": media_type,
                    "body": body,
                    "path_variables": re.findall(r"\{([^}]+)\}", path),
                }
            )
    return items


def collection_variables(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(name, default value, description) of every collection variable."""
    variables = [
        (s.url_variable, f"http://127.0.0.1:{default_port(s)}", f"Base URL of {s.title} (`{s.run}`).")
        for s in HTTP_SERVICES
    ]
    variables.append(("api_key", "", "An API key (imgp_...); `make up` writes one to .run/dev/api-key."))
    seen = set()
    for item in collection_items(documents):
        for name in item["path_variables"]:
            if name not in seen:
                seen.add(name)
                variables.append((name, "", f"The `{name}` path parameter."))
    return variables
