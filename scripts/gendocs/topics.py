"""The topic table in docs/architecture.md, from the registry in pipeline_schemas.topics."""

from __future__ import annotations


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
