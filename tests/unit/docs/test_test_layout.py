"""The test tree keeps the convention the README states: every test folder is a package.

Each folder under tests/ that holds Python files has an empty `__init__.py`, so every test module
has a unique dotted name (`tests.unit.tracker.test_events`), conftest files never clash, and a
test imports its helpers as `tests.support.…` or `tests.<suite>.<folder>.…`.
"""

from __future__ import annotations

from .conftest import ROOT

TESTS = ROOT / "tests"


def python_folders() -> list:
    folders = {path.parent for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts}
    return sorted(folders)


def test_every_test_folder_is_a_package():
    missing = [str(f.relative_to(ROOT)) for f in python_folders() if not (f / "__init__.py").is_file()]
    assert not missing, f"folders without __init__.py: {missing}"


def test_every_init_file_of_the_test_tree_is_empty():
    filled = [str(p.relative_to(ROOT)) for p in TESTS.rglob("__init__.py") if p.read_text().strip()]
    assert not filled, f"__init__.py files with content (helpers belong in a module): {filled}"


def test_the_layout_check_sees_every_suite():
    suites = {f.relative_to(TESTS).parts[0] for f in python_folders() if f != TESTS}
    assert {"unit", "integration", "e2e", "chaos", "support"} <= suites
