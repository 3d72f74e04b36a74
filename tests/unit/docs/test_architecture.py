"""docs/architecture.md against the tree: the statements a test can check stay true.

- the Pillow pool it says runs by default is the compressor Settings class's default;
- the component table names every module of pipeline_runtime and links only to what exists;
- the table of files by role names, per service, only files that exist or that its "Awaited" line
  lists (the integrator empties that line as the restructuring branches land).
"""

from __future__ import annotations

import re
import typing

from compressor.config import Settings as CompressorSettings

from .conftest import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
RUNTIME = ROOT / "libs" / "runtime" / "src" / "pipeline_runtime"
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "src" / p.name).is_dir())
PLURAL = {"thread": "threads", "process": "processes"}
PY_FILE = re.compile(r"`([\w/]+\.py)`")


def section(title: str) -> str:
    """The text of one `## title` section of docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/architecture.md has no section `## {title}`"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every row of the first Markdown table in `text` (without the separator row)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            if rows:
                break
        elif not re.fullmatch(r"\|(\s*-+\s*\|)+", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_pillow_pool_the_architecture_calls_the_default_is_the_settings_default():
    field = CompressorSettings.model_fields["pool"]
    default, kinds = field.default, typing.get_args(field.annotation)
    text = ARCHITECTURE.read_text()
    stated = re.findall(r"(\w+) by default, `COMPRESSOR_POOL=(\w+)`", text)
    assert stated, "docs/architecture.md no longer says which Pillow pool runs by default"
    assert set(stated) == {(PLURAL[default], default)}, stated
    for other in set(kinds) - {default}:
        assert f"{other} pool" not in text, f"docs/architecture.md speaks of a {other} pool"


def test_the_component_table_names_every_module_of_the_shared_runtime():
    rows = table_rows(section("Components"))
    shared = next(" ".join(row) for row in rows if row[0] == "shared runtime")
    modules = [p.stem for p in RUNTIME.glob("*.py") if p.name != "__init__.py"]
    modules += [p.name for p in RUNTIME.iterdir() if (p / "__init__.py").is_file()]
    unnamed = sorted(m for m in modules if not re.search(rf"\b{re.escape(m)}(\.py|/)?\b", shared))
    assert not unnamed, f"pipeline_runtime modules the component table does not name: {unnamed}"


def test_every_file_the_component_table_links_to_exists():
    table = section("Components").split("\n\n")[0]
    targets = re.findall(r"\]\(\.\./([^)#]+)\)", table)
    assert targets
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert not missing, f"component table links to what does not exist: {missing}"


def test_the_component_table_has_a_row_for_every_service():
    rows = table_rows(section("Components"))
    linked = " ".join(row[1] for row in rows[1:])
    missing = [s for s in SERVICES if f"services/{s}/src/{s}" not in linked]
    assert not missing, f"services without a row in the component table: {missing}"


def role_table() -> tuple[dict[str, set[str]], set[str]]:
    """(service → files the role table names, the files the "Awaited" line lists), as service/path."""
    text = section("Files by role in each service")
    header, *rows = table_rows(text)
    assert header[0] == "role"
    named: dict[str, set[str]] = {service: set() for service in header[1:]}
    for row in rows:
        for service, cell in zip(header[1:], row[1:], strict=True):
            named[service].update(f"{service}/{path}" for path in PY_FILE.findall(cell))
    awaited_line = re.search(r"^Awaited \(not on main yet\):(.*?)(?:\n\n|\Z)", text, re.MULTILINE | re.DOTALL)
    assert awaited_line, "the role table has lost its `Awaited (not on main yet):` line"
    return named, set(PY_FILE.findall(awaited_line.group(1)))


def exists(service_path: str) -> bool:
    service = service_path.split("/", 1)[0]
    return (ROOT / "services" / service / "src" / service_path).is_file()


def test_the_role_table_has_a_column_for_every_service_and_every_role():
    named, _ = role_table()
    assert sorted(named) == SERVICES
    roles = [row[0] for row in table_rows(section("Files by role in each service"))[1:]]
    for role in (
        "process entry",
        "settings",
        "app factory",
        "handlers",
        "worker",
        "pure logic",
        "adapters",
        "metrics",
    ):
        assert any(r.startswith(role) for r in roles), f"no row for the role {role!r}"


def test_every_file_the_role_table_names_exists_or_is_awaited():
    named, awaited = role_table()
    everything = set().union(*named.values())
    missing = sorted(p for p in everything if not exists(p) and p not in awaited)
    assert not missing, f"named in the role table but not in the tree (nor awaited): {missing}"


def test_every_awaited_file_is_named_in_the_role_table_and_not_yet_in_the_tree():
    named, awaited = role_table()
    everything = set().union(*named.values())
    landed = sorted(p for p in awaited if exists(p))
    assert not landed, f"these exist now: delete them from the Awaited line of the role table: {landed}"
    stray = sorted(awaited - everything)
    assert not stray, f"awaited but not named in the role table: {stray}"
