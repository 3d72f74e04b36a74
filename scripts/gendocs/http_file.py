"""docs/api-collection/imgpipe.http: the API collection for VS Code REST Client / JetBrains HTTP Client."""

from __future__ import annotations

import json
from typing import Any

from .collection import collection_items, collection_variables, path_with_variables


def render_http_file(documents: dict[str, dict[str, Any]]) -> str:
    out = [
        "# imgpipe API collection for VS Code REST Client / JetBrains HTTP Client.",
        "# Generated from docs/openapi/*.json by scripts/gen_docs.py (`make docs`); do not edit.",
        "# Set @api_key (make up writes one to .run/dev/api-key) and the ids you want to look at.",
        "",
    ]
    out += [f"@{name} = {value}".rstrip() for name, value, _ in collection_variables(documents)]
    out.append("")
    for item in collection_items(documents):
        service = item["service"]
        out.append(f"### {item['name']} ({service.title}): {item['summary']}")
        if item["description"]:
            out += [f"# {line}".rstrip() for line in item["description"].splitlines()]
        query = [q for q in item["query"] if not q["disabled"]]
        target = "{{" + service.url_variable + "}}" + path_with_variables(item["path"])
        if query:
            target += "?" + "&".join(f"{q['key']}={q['value']}" for q in query)
        out.append(f"{item['method']} {target}")
        out.append("Authorization: Bearer {{api_key}}")
        for header in item["headers"]:
            out.append(f"# {header['key']}: <value>")
        if item["media_type"] == "multipart/form-data":
            out += ["Content-Type: multipart/form-data; boundary=imgpipe", ""]
            for part in item["body"]:
                out.append("--imgpipe")
                if part["type"] == "file":
                    out += [
                        f'Content-Disposition: form-data; name="{part["key"]}"; filename="{part["src"]}"',
                        "Content-Type: text/csv",
                        "",
                        f"< ./{part['src']}",
                    ]
                elif not part["disabled"]:
                    out += [f'Content-Disposition: form-data; name="{part["key"]}"', "", part["value"]]
                else:
                    out.pop()  # optional fields are left out
            out.append("--imgpipe--")
        elif item["media_type"] == "application/json":
            out += ["Content-Type: application/json", "", json.dumps(item["body"], indent=2)]
        out.append("")
    return "\n".join(out)
