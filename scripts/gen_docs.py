#!/usr/bin/env python
"""Writes the generated parts of docs/ from the code (run by `make docs`).

What it writes, all derived from the code as it is now:

- docs/openapi/<service>.json: the OpenAPI document of each HTTP service, built by the
  service's own app factory without starting a server or connecting anywhere;
- docs/api-collection/: an API collection built from those documents (a Postman v2.1
  collection and an HTTP-file collection for VS Code REST Client / JetBrains HTTP Client);
- the blocks between `<!-- BEGIN GENERATED: name ... -->` and `<!-- END GENERATED: name -->`
  in docs/*.md: the settings reference (every pydantic-settings class in
  services/*/src/*/config.py), the route index, the topic table and the metric list.

`--check` writes nothing and exits 1 when a committed file differs from what would be written.
The tests in tests/unit/docs call `render_all()` and compare the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OPENAPI_DIR = DOCS / "openapi"
COLLECTION_DIR = DOCS / "api-collection"
POSTMAN_FILE = COLLECTION_DIR / "imgpipe.postman_collection.json"
HTTP_FILE = COLLECTION_DIR / "imgpipe.http"
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

BEGIN = "<!-- BEGIN GENERATED: {name} (scripts/gen_docs.py, `make docs`; do not edit by hand) -->"
END = "<!-- END GENERATED: {name} -->"
BLOCK_RE = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED: (?P<name>[a-z0-9-]+) [^\n]*-->\n)(?P<body>.*?)(?P<end><!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)


class GenerationError(RuntimeError):
    """Something the generator needs could not be imported or built."""


# --------------------------------------------------------------------------------------------
# The HTTP services and how to build their apps without serving them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpService:
    name: str  # docs/openapi/<name>.json
    title: str  # as people call it
    settings: tuple[str, str]  # (module, class)
    factories: tuple[tuple[str, str], ...]  # (module, function) candidates, first that exists wins
    url_variable: str  # collection variable holding its base URL
    run: str  # how it is started


HTTP_SERVICES = (
    HttpService(
        "ingest",
        "ingest",
        ("ingest.config", "Settings"),
        (("ingest.app", "create_app"),),
        "ingest_url",
        "python -m ingest",
    ),
    HttpService(
        "tracker",
        "tracker API",
        ("tracker.config", "Settings"),
        (("tracker.api", "create_api"), ("tracker.api", "create_app")),
        "tracker_url",
        "python -m tracker api",
    ),
    HttpService(
        "notifier",
        "notifier",
        ("notifier.config", "Settings"),
        (("notifier.app", "create_app"),),
        "notifier_url",
        "python -m notifier",
    ),
)

# Settings prefixes whose variables must not leak from the caller's environment into the apps we
# build (the generated files must not depend on who runs the generator).
ENV_PREFIXES = ("INGEST_", "COMPRESSOR_", "TRACKER_", "NOTIFIER_", "KAFKA_", "LOG_")
SHARED_ENV = ("DATABASE_URL", "FETCH_ALLOWLIST", "BOOTSTRAP_API_KEY")


@contextlib.contextmanager
def clean_environment() -> Iterator[Path]:
    """No pipeline settings from the environment or a .env file; a scratch working directory."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in SHARED_ENV}
    for key in saved:
        del os.environ[key]
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="gen-docs-") as scratch:
        os.chdir(scratch)  # relative defaults (.run/dev/media, .env) land here, not in the repo
        try:
            yield Path(scratch)
        finally:
            os.chdir(cwd)
            os.environ.update(saved)


def _import(module: str, attribute: str) -> Any:
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise GenerationError(f"cannot import {module}.{attribute}: {exc!r}") from exc


def _resolve_factory(service: HttpService) -> tuple[type, Callable[[Any], Any]]:
    """The settings class and the app factory of a service (the first candidate that exists)."""
    settings_class = _import(*service.settings)
    errors = []
    for module, function in service.factories:
        try:
            return settings_class, _import(module, function)
        except GenerationError as exc:
            errors.append(str(exc))
    raise GenerationError(f"no app factory found for {service.name}: " + "; ".join(errors))


def build_apps() -> dict[str, Any]:
    """Each HTTP service's FastAPI app, from its own factory and default settings.

    Nothing is started: no lifespan runs, so no server, database or broker is contacted.
    Imports happen first; the apps are then built without the caller's pipeline settings
    in the environment, in a scratch working directory.
    """
    factories = {s.name: _resolve_factory(s) for s in HTTP_SERVICES}
    apps = {}
    with clean_environment():
        for name, (settings_class, factory) in factories.items():
            try:
                try:
                    settings = settings_class(_env_file=None)
                except TypeError:  # not a pydantic-settings class after all
                    settings = settings_class()
                apps[name] = factory(settings)
            except Exception as exc:  # a factory that fails is reported with the service's name
                raise GenerationError(f"building the {name} app failed: {exc!r}") from exc
    return apps


def openapi_documents(apps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each HTTP service's OpenAPI document, as its app serves it at /openapi.json."""
    documents = {}
    for name, app in apps.items():
        try:
            documents[name] = app.openapi()
        except Exception as exc:
            raise GenerationError(f"the OpenAPI document of {name} cannot be built: {exc!r}") from exc
    return documents


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) of every route, looking inside included routers.

    Recent FastAPI keeps an included router as one entry (with `original_router` and its
    include context) instead of copying its routes into the app.
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from api_routes(list(inner.routes), prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            yield prefix + route.path, route


def required_scope(route: Any) -> str | None:
    """The scope of a `pipeline_runtime.http.require(scope)` dependency of the route, if any."""
    dependant = getattr(route, "dependant", None)
    stack = list(getattr(dependant, "dependencies", []) or [])
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        if call is not None and "require" in getattr(call, "__qualname__", ""):
            with contextlib.suppress(TypeError, ValueError):
                scope = inspect.getclosurevars(call).nonlocals.get("scope")
                if isinstance(scope, str):
                    return scope
        stack.extend(getattr(dep, "dependencies", []) or [])
    return None


# --------------------------------------------------------------------------------------------
# Settings reference
# --------------------------------------------------------------------------------------------

# Used only where the code gives a setting no description (listed as a gap; the code should say it).
FALLBACK_DESCRIPTIONS = {
    "KAFKA_BOOTSTRAP_SERVERS": "Comma-separated host:port list of Kafka brokers.",
    "LOG_FORMAT": "`json`: one JSON object per line (production); `console`: readable lines (development).",
    "LOG_LEVEL": "Lowest level logged: DEBUG, INFO, WARNING, ERROR.",
    "COMPRESSOR_S3_REGION": "Region of the S3 client (also used in AWS output URLs).",
    "COMPRESSOR_S3_ADDRESSING_STYLE": "S3 bucket addressing: `path` (endpoint/bucket/key) or `virtual` (bucket.endpoint/key).",
    "COMPRESSOR_MAX_REDIRECTS": "Redirects followed per download, each one checked by the address guard.",
}
FALLBACK_MARK = " †"


@dataclass(frozen=True)
class SettingDoc:
    env: str
    type: str
    default: str
    description: str
    secret: bool = False


@dataclass
class SettingsDoc:
    service: str
    module: str
    class_name: str
    prefix: str
    docstring: str
    settings: list[SettingDoc] = field(default_factory=list)


PIPELINE_ORDER = ("ingest", "compressor", "tracker", "notifier")  # others follow, by name


def discover_settings_classes() -> list[tuple[str, type]]:
    """(service, class) for every pydantic-settings class defined in services/*/src/*/config.py."""
    from pydantic_settings import BaseSettings

    found = []
    for config in sorted(ROOT.glob("services/*/src/*/config.py")):
        package = config.parent.name
        module_name = f"{package}.config"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise GenerationError(f"cannot import {module_name}: {exc!r}") from exc
        for _, value in sorted(vars(module).items()):
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value.__module__ == module_name
            ):
                found.append((config.parents[2].name, value))
    if not found:
        raise GenerationError("no settings classes found under services/*/src/*/config.py")
    order = {name: i for i, name in enumerate(PIPELINE_ORDER)}
    return sorted(found, key=lambda pair: (order.get(pair[0], len(order)), pair[0]))


def _env_names_of(name: str, info: Any, prefix: str) -> list[str]:
    """The environment variable names pydantic-settings reads a field from (first is the usual one)."""
    from pydantic import AliasChoices

    alias = info.validation_alias or info.alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        names = [c.upper() for c in alias.choices if isinstance(c, str)]
        if names:
            return names
    return [(prefix + name).upper()]


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) != len(typing.get_args(annotation))
    return annotation, False


def _is_settings_model(annotation: Any) -> bool:
    from pydantic_settings import BaseSettings

    inner, _ = _strip_optional(annotation)
    return isinstance(inner, type) and issubclass(inner, BaseSettings)


def type_text(annotation: Any) -> str:
    from pydantic import SecretStr

    inner, optional = _strip_optional(annotation)
    origin = typing.get_origin(inner)
    if origin is typing.Literal:
        text = "one of " + ", ".join(f"`{v}`" for v in typing.get_args(inner))
    elif origin in (list, tuple, set, frozenset):
        args = typing.get_args(inner)
        element = type_text(args[0]) if args else "value"
        text = f"JSON list of {element}s"
    elif inner is SecretStr:
        text = "secret"
    else:
        text = {
            str: "string",
            int: "integer",
            float: "number",
            bool: "boolean",
            Path: "path",
        }.get(inner, getattr(inner, "__name__", str(inner)))
    return text + (", optional" if optional else "")


def _constraints(info: Any) -> str:
    parts = []
    for meta in info.metadata:
        for attr, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return " " + ", ".join(parts) if parts else ""


def default_text(info: Any, description: str) -> str:
    from pydantic import SecretStr
    from pydantic_core import PydanticUndefined

    if info.default is PydanticUndefined:
        if info.default_factory is not None:
            return "computed at start-up"
        return "**required**"
    value = info.default
    inner, _ = _strip_optional(info.annotation)
    if value is None:
        return "unset"
    if inner is SecretStr or isinstance(value, SecretStr):
        return "set (hidden)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if (
        isinstance(value, int)
        and value == (os.cpu_count() or 2)
        and re.search(r"\bcores?\b", description, re.IGNORECASE)
    ):
        return "the number of CPU cores"  # os.cpu_count() at import: not the same on every machine
    if isinstance(value, str) and value == "":
        return "empty"
    if isinstance(value, list | tuple | dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _describe_fields(model: type, prefix: str, into: list[SettingDoc]) -> None:
    from pydantic import SecretStr

    for name, info in model.model_fields.items():
        if _is_settings_model(info.annotation):
            nested, _ = _strip_optional(info.annotation)
            nested_prefix = nested.model_config.get("env_prefix", "")
            _describe_fields(nested, nested_prefix, into)
            continue
        env = _env_names_of(name, info, prefix)
        description = (info.description or "").strip()
        if not description:
            description = FALLBACK_DESCRIPTIONS.get(env[0], "") + FALLBACK_MARK
        if len(env) > 1:
            description += " Also read from " + ", ".join(f"`{e}`" for e in env[1:]) + "."
        inner, _ = _strip_optional(info.annotation)
        into.append(
            SettingDoc(
                env=env[0],
                type=type_text(info.annotation) + _constraints(info),
                default=default_text(info, description),
                description=description,
                secret=inner is SecretStr,
            )
        )


def settings_docs() -> list[SettingsDoc]:
    docs = []
    for service, cls in discover_settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        doc = SettingsDoc(
            service=service,
            module=cls.__module__,
            class_name=cls.__name__,
            prefix=prefix,
            docstring=inspect.cleandoc(cls.__doc__ or "").split("\n")[0],
        )
        _describe_fields(cls, prefix, doc.settings)
        docs.append(doc)
    return docs


def settings_env_names() -> dict[str, set[str]]:
    """Service → every environment variable its settings classes read (for the tests)."""
    names: dict[str, set[str]] = {}
    for doc in settings_docs():
        names.setdefault(doc.service, set()).update(s.env for s in doc.settings)
    return names


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_settings_reference() -> str:
    out = [
        "Every variable each service reads, from its settings class. Names are case-insensitive;",
        "`KAFKA_*`, `LOG_*` and the unprefixed ones are shared names that several services read.",
        "A description marked † is the documentation's own: the code gives that setting none.",
        "",
    ]
    for doc in settings_docs():
        path = f"../services/{doc.service}/src/{doc.module.split('.')[0]}/config.py"
        out += [
            f"#### Settings of `{doc.service}`",
            "",
            f"[`{doc.module}.{doc.class_name}`]({path}): {doc.docstring} Prefix `{doc.prefix}`.",
            "",
            "| variable | type | default | description |",
            "|---|---|---|---|",
        ]
        for s in doc.settings:
            out.append(f"| `{s.env}` | {_cell(s.type)} | {_cell(s.default)} | {_cell(s.description)} |")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Topics (architecture.md)
# --------------------------------------------------------------------------------------------


def render_topics() -> str:
    from pipeline_schemas import TOPICS
    from pipeline_schemas._generate import schema_file_name

    out = [
        "| topic | key | partitions | value (JSON Schema) | producers | consumers |",
        "|---|---|---|---|---|---|",
    ]
    for topic in TOPICS.values():
        schemas = []
        for model in topic.value_models:
            version = model.model_fields["schema_version"].default
            event_type = model.model_fields["event_type"].default
            file = schema_file_name(topic.name, model.__name__, version)
            schemas.append(f"[`{event_type}` v{version}](../schemas/jsonschema/{file})")
        out.append(
            f"| `{topic.name}` | `{topic.key_field}` | {topic.partitions} | {'<br>'.join(schemas)} "
            f"| {', '.join(topic.producers)} | {', '.join(topic.consumers)} |"
        )
    out.append("")
    for topic in TOPICS.values():
        out.append(f"- `{topic.name}`: {topic.description}")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Metrics (operations.md)
# --------------------------------------------------------------------------------------------


def metric_families() -> list[tuple[str, str, list[str], str]]:
    """(exposed name, type, labels, help) of every metric declared in pipeline_runtime.metrics
    or in a service's own metrics.py (e.g. tracker/worker/metrics.py)."""
    names = ["pipeline_runtime.metrics"]
    for path in sorted(ROOT.glob("services/*/src/**/metrics.py")):
        src = next(parent for parent in path.parents if parent.name == "src")
        names.append(".".join(path.relative_to(src).with_suffix("").parts))
    found = {}
    for module_name in names:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for value in vars(module).values():
            name = getattr(value, "_name", None)
            kind = getattr(value, "_type", None)
            if not isinstance(name, str) or kind not in ("counter", "gauge", "histogram", "summary"):
                continue
            exposed = name + "_total" if kind == "counter" else name
            labels = list(getattr(value, "_labelnames", ()))
            found[exposed] = (exposed, kind, labels, getattr(value, "_documentation", ""))
    return [found[name] for name in sorted(found)]


def render_metrics() -> str:
    families = metric_families()
    if not families:
        return "No metrics are declared in `pipeline_runtime.metrics` yet.\n"
    out = [
        "Declared in [`pipeline_runtime.metrics`](../libs/runtime/src/pipeline_runtime/metrics.py):",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, kind, labels, help_text in families:
        label_text = ", ".join(f"`{label}`" for label in labels) or "—"
        out.append(f"| `{name}` | {kind} | {label_text} | {_cell(help_text)} |")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Route index (api.md)
# --------------------------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


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
        port = _default_port(service)
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
                f"| [`{method.upper()} {path}`](#{anchor}) | {_cell(summary)} | {', '.join(ok)} "
                f"| {', '.join(errors) or '—'} | {f'`{scope}`' if scope else 'none'} |"
            )
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# API collection (Postman v2.1 and an HTTP file), from the OpenAPI documents
# --------------------------------------------------------------------------------------------


def _default_port(service: HttpService) -> int:
    settings_class = _import(*service.settings)
    return int(settings_class.model_fields["port"].default)


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


def _path_with_variables(path: str) -> str:
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


def _variables(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(name, default value, description) of every collection variable."""
    variables = [
        (s.url_variable, f"http://127.0.0.1:{_default_port(s)}", f"Base URL of {s.title} (`{s.run}`).")
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


def render_postman(documents: dict[str, dict[str, Any]]) -> str:
    folders = []
    items = collection_items(documents)
    for service in HTTP_SERVICES:
        requests = []
        for item in (i for i in items if i["service"] is service):
            url_path = _path_with_variables(item["path"])
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
            for name, value, description in _variables(documents)
        ],
        "item": folders,
    }
    return json.dumps(collection, indent=2, ensure_ascii=False) + "\n"


def render_http_file(documents: dict[str, dict[str, Any]]) -> str:
    out = [
        "# imgpipe API collection for VS Code REST Client / JetBrains HTTP Client.",
        "# Generated from docs/openapi/*.json by scripts/gen_docs.py (`make docs`); do not edit.",
        "# Set @api_key (make up writes one to .run/dev/api-key) and the ids you want to look at.",
        "",
    ]
    out += [f"@{name} = {value}".rstrip() for name, value, _ in _variables(documents)]
    out.append("")
    for item in collection_items(documents):
        service = item["service"]
        out.append(f"### {item['name']} ({service.title}): {item['summary']}")
        if item["description"]:
            out += [f"# {line}".rstrip() for line in item["description"].splitlines()]
        query = [q for q in item["query"] if not q["disabled"]]
        target = "{{" + service.url_variable + "}}" + _path_with_variables(item["path"])
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


# --------------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------------


def replace_blocks(text: str, blocks: dict[str, str], file: Path) -> str:
    """`text` with the body of each named generated block replaced."""
    found = set()

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            return match.group(0)
        found.add(name)
        body = blocks[name].rstrip("\n") + "\n"
        return BEGIN.format(name=name) + "\n" + body + match.group("end")

    result = BLOCK_RE.sub(substitute, text)
    missing = set(blocks) - found
    if missing:
        raise GenerationError(
            f"{file.relative_to(ROOT)} lacks the generated block(s) {sorted(missing)}: add\n"
            + "\n".join(BEGIN.format(name=n) + "\n" + END.format(name=n) for n in sorted(missing))
        )
    return result


MARKDOWN_BLOCKS: dict[str, tuple[str, ...]] = {
    "operations.md": ("settings-reference", "metrics"),
    "architecture.md": ("topics",),
    "api.md": ("routes",),
}


def render_all() -> dict[Path, str]:
    """Every generated file (or Markdown file with generated blocks) and its full text."""
    apps = build_apps()
    documents = openapi_documents(apps)
    routes = {name: list(app.routes) for name, app in apps.items()}
    files: dict[Path, str] = {}
    for name, document in documents.items():
        files[OPENAPI_DIR / f"{name}.json"] = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
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
    for folder in (OPENAPI_DIR, COLLECTION_DIR):
        if folder.exists():
            out += [str(p.relative_to(ROOT)) for p in sorted(folder.iterdir()) if p not in files]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    try:
        files = render_all()
    except GenerationError as exc:
        print(f"gen_docs: {exc}", file=sys.stderr)
        return 1
    if args.check:
        out_of_date = stale(files)
        if out_of_date:
            print("stale generated docs (run `make docs`): " + ", ".join(out_of_date), file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    for folder in (OPENAPI_DIR, COLLECTION_DIR):
        for stray in sorted(folder.iterdir()):
            if stray not in files:
                stray.unlink()
                print(f"removed {stray.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
