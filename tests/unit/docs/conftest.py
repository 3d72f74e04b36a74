"""The documentation generator, loaded from scripts/gen_docs.py, and what it renders (once)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_gen_docs():
    name = "imgpipe_gen_docs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "gen_docs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def gen_docs():
    return load_gen_docs()


@pytest.fixture(scope="session")
def rendered(gen_docs) -> dict[Path, str]:
    """Every generated file as the code would produce it now (nothing is written)."""
    return gen_docs.render_all()


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def generated_block(text: str, name: str) -> str:
    """The body of one generated block of a Markdown text."""
    gen = load_gen_docs()
    for match in gen.BLOCK_RE.finditer(text):
        if match.group("name") == name:
            return match.group("body")
    raise AssertionError(f"no generated block {name!r}")
