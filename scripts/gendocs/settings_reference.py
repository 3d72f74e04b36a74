"""The settings reference in docs/operations.md: every variable each service's settings class reads."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import ROOT, GenerationError, cell

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
            out.append(f"| `{s.env}` | {cell(s.type)} | {cell(s.default)} | {cell(s.description)} |")
        out.append("")
    return "\n".join(out)
