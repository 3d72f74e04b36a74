"""The metric list in docs/operations.md: every metric family the code declares.

The shared families live in pipeline_runtime.metrics; a service declares its own in a
`metrics.py` of its package (any depth, e.g. tracker/worker/metrics.py). Both are read.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from .common import ROOT, GenerationError, cell

SHARED = ("pipeline_runtime.metrics", ROOT / "libs" / "runtime" / "src" / "pipeline_runtime" / "metrics.py")


def metric_modules() -> list[tuple[str, Path]]:
    """(module name, file) of every module that declares metrics: the shared one, then the services'."""
    found = [SHARED] if SHARED[1].exists() else []
    for path in sorted(ROOT.glob("services/*/src/**/metrics.py")):
        src = next(parent for parent in path.parents if parent.name == "src")
        found.append((".".join(path.relative_to(src).with_suffix("").parts), path))
    return found


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise GenerationError(f"cannot import {name}: {exc!r}") from exc


def metric_families() -> list[tuple[str, str, list[str], str]]:
    """(exposed name, type, labels, help) of every metric family the metric modules declare."""
    from pipeline_runtime.metrics import declared_metrics

    names = [name for name, _ in metric_modules()]
    for name in names:
        _import(name)  # a module that cannot be imported is an error here, not a silent gap
    return declared_metrics(names)


def _links(modules: list[tuple[str, Path]]) -> str:
    links = [f"[`{name}`](../{path.relative_to(ROOT).as_posix()})" for name, path in modules]
    return links[0] if len(links) == 1 else ", ".join(links[:-1]) + " and " + links[-1]


def render_metrics() -> str:
    families = metric_families()
    if not families:
        return "No metrics are declared in `pipeline_runtime.metrics` yet.\n"
    out = [
        f"Declared in {_links(metric_modules())}:",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, kind, labels, help_text in families:
        label_text = ", ".join(f"`{label}`" for label in labels) or "—"
        out.append(f"| `{name}` | {kind} | {label_text} | {cell(help_text)} |")
    out.append("")
    return "\n".join(out)
