"""The documentation generator, the package scripts/gendocs, and what it renders (once)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_gen_docs():
    """The scripts/gendocs package (scripts/ is no package, so its folder goes on the path once)."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.append(scripts)
    return importlib.import_module("gendocs")


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
