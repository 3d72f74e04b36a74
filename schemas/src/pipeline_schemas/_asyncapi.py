"""The AsyncAPI 3.0 document of the pipeline, built from the topic registry (schemas/asyncapi.yaml).

Channels are the registry's topics, operations say which service sends and which receives on each,
and message payloads are the models' JSON Schemas. It is rendered as YAML without a YAML library
(this package depends on pydantic only): block mappings and lists, every scalar written as JSON,
which YAML reads as the same value.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .base import EventBase
from .topics import TOPICS, Topic

__all__ = ["document", "to_yaml"]

KAFKA_BINDING_VERSION = "0.5.0"
_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def document() -> dict[str, Any]:
    """The whole AsyncAPI document as plain data."""
    models = {model.__name__: model for topic in TOPICS.values() for model in topic.value_models}
    schemas: dict[str, Any] = {}
    for name, model in sorted(models.items()):
        schema = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "imgpipe events",
            "version": package_version(),
            "description": (
                "Every Kafka topic of the image pipeline, generated from pipeline_schemas.topics "
                "(`make schemas`). How topics and schemas change: schemas/README.md."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {topic.name: channel(topic) for topic in TOPICS.values()},
        "operations": operations(),
        "components": {"schemas": schemas},
    }


def package_version() -> str:
    try:
        return version("pipeline-schemas")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0"


def channel(topic: Topic[EventBase]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "address": topic.name,
        "description": topic.description,
        "messages": {m.__name__: message(m, topic) for m in topic.value_models},
        "bindings": {"kafka": {"partitions": topic.partitions, "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if topic.replaced_by is not None:
        entry["x-replaced-by"] = topic.replaced_by
    return entry


def operations() -> dict[str, Any]:
    """`<service>.<send|receive>.<topic>` for every producer and consumer in the registry."""
    found: dict[str, Any] = {}
    for topic in TOPICS.values():
        for action, services in (("send", topic.producers), ("receive", topic.consumers)):
            for service in services:
                found[f"{service}.{action}.{topic.name}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{topic.name}"},
                    "messages": [
                        {"$ref": f"#/channels/{topic.name}/messages/{m.__name__}"} for m in topic.value_models
                    ],
                }
    return dict(sorted(found.items()))


def message(model: type[EventBase], topic: Topic[EventBase]) -> dict[str, Any]:
    """A model as a message of `topic`: its event type, payload schema and the topic's Kafka key."""
    key = {"type": "string", "description": f"The event's `{topic.key_field}`, as text."}
    return {
        "name": model.model_fields["event_type"].default,
        "title": model.__name__,
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and JSON scalars (the output ends with a newline)."""
    return "".join(_lines(value, indent))


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}\n"]
        out: list[str] = []
        for key, item in value.items():
            label = pad + _key(str(key)) + ":"
            out += _entry(label, item, indent)
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]\n"]
        out = []
        for item in value:
            if isinstance(item, dict) and item:  # "- first: ..." then the other keys aligned under it
                first, *rest = _lines(item, indent + 2)
                out += [pad + "- " + first[indent + 2 :], *rest]
            else:
                out += _entry(pad + "-", item, indent)
        return out
    return [pad + json.dumps(value) + "\n"]


def _key(key: str) -> str:
    """A mapping key, quoted only when YAML could read it as something other than that string."""
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def _entry(label: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, dict | list) and item:
        return [label + "\n", *_lines(item, indent + 2)]
    return [label + " " + _lines(item, 0)[0]]
