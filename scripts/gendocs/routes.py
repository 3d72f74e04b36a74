"""The route index in docs/api.md: every operation of every HTTP service, with its API key scope."""

from __future__ import annotations

import re
from typing import Any

from .apps import HTTP_SERVICES, HttpService, api_routes, default_port, operations, required_scope
from .common import cell


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading's text (lower case, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def route_heading(service: HttpService, method: str, path: str) -> str:
    """The heading docs/api.md gives each route (the route index links to it)."""
    return f"{service.title}: `{method.upper()} {path}`"


def render_routes(documents: dict[str, dict[str, Any]], routes: dict[str, list[Any]]) -> str:
    out = []
    for service in HTTP_SERVICES:
        document = documents[service.name]
        scopes = {}
        for path, route in api_routes(routes[service.name]):
            for method in getattr(route, "methods", None) or ():
                scopes[(method.lower(), path)] = required_scope(route)
        port = default_port(service)
        out += [
            f"#### {service.title} (`{service.run}`, port {port})",
            "",
            f"OpenAPI: [docs/openapi/{service.name}.json](openapi/{service.name}.json), served at "
            f"`http://127.0.0.1:{port}/openapi.json` and `/docs`.",
            "",
            "| route | what it does | success | declared errors | API key scope |",
            "|---|---|---|---|---|",
        ]
        for method, path, op in operations(document):
            responses = op.get("responses", {})
            ok = [c for c in responses if c.startswith("2")]
            errors = [c for c in responses if not c.startswith("2")]
            scope = scopes.get((method, path))
            anchor = github_anchor(route_heading(service, method, path))
            summary = (op.get("description") or op.get("summary") or "").split("\n")[0]
            out.append(
                f"| [`{method.upper()} {path}`](#{anchor}) | {cell(summary)} | {', '.join(ok)} "
                f"| {', '.join(errors) or '—'} | {f'`{scope}`' if scope else 'none'} |"
            )
        out.append("")
    return "\n".join(out)
