"""The metric list in docs/operations.md: every metric family the code declares."""

from __future__ import annotations

import importlib

from .common import cell


def metric_families() -> list[tuple[str, str, list[str], str]]:
    """(exposed name, type, labels, help) of every metric declared in pipeline_runtime.metrics."""
    try:
        module = importlib.import_module("pipeline_runtime.metrics")
    except ImportError:
        return []
    found = []
    for value in vars(module).values():
        name = getattr(value, "_name", None)
        kind = getattr(value, "_type", None)
        if not isinstance(name, str) or kind not in ("counter", "gauge", "histogram", "summary"):
            continue
        exposed = name + "_total" if kind == "counter" else name
        found.append(
            (exposed, kind, list(getattr(value, "_labelnames", ())), getattr(value, "_documentation", ""))
        )
    return sorted(found)


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
        out.append(f"| `{name}` | {kind} | {label_text} | {cell(help_text)} |")
    out.append("")
    return "\n".join(out)
