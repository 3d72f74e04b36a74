"""Writes the JSON Schema files from the pydantic models (python -m pipeline_schemas._generate).

The models are the source of truth; the files under schemas/jsonschema/ are generated and
committed so that other teams can read the contract without Python. `--check` exits 1 when
the committed files differ from what the models generate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .topics import TOPICS

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "jsonschema"


def schema_file_name(topic: str, model_name: str, version: int) -> str:
    return f"{topic}.{model_name}.v{version}.json"


def render_all() -> dict[str, str]:
    """Every generated file's name and its text."""
    files: dict[str, str] = {}
    for topic in TOPICS.values():
        for model in topic.value_models:
            version = model.model_fields["schema_version"].default
            schema = model.model_json_schema(mode="serialization")
            schema["$id"] = schema_file_name(topic.name, model.__name__, version)
            schema["x-topic"] = topic.name
            schema["x-key"] = topic.key_field
            if topic.replaced_by is not None:
                schema["x-replaced-by"] = topic.replaced_by
            text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
            files[schema_file_name(topic.name, model.__name__, version)] = text
    return files


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text)


def stale_files(out: Path) -> list[str]:
    """Names of generated files that are missing, different, or no longer produced."""
    expected = render_all()
    present = {p.name for p in out.glob("*.json")} if out.exists() else set()
    stale = [n for n, t in expected.items() if not (out / n).exists() or (out / n).read_text() != t]
    stale += sorted(present - expected.keys())
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print("stale generated schema files: " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
        return
    write(args.out)


if __name__ == "__main__":
    main()
