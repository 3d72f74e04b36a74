"""The settings reference in docs/operations.md lists exactly the settings the code reads."""

from __future__ import annotations

import re

from .conftest import ROOT, generated_block, markdown_files

OPERATIONS = ROOT / "docs" / "operations.md"
# Names that look like settings: a service or shared prefix, or one of the unprefixed shared names.
SETTING_NAME = re.compile(
    r"(?<![A-Za-z0-9_])((?:INGEST|COMPRESSOR|TRACKER|NOTIFIER|KAFKA|LOG)_[A-Z0-9_]*[A-Z0-9]"
    r"|DATABASE_URL|FETCH_ALLOWLIST|BOOTSTRAP_API_KEY)(?![A-Za-z0-9_])"
)
SECTION = re.compile(r"^#### Settings of `([^`]+)`$", re.MULTILINE)
ROW_NAME = re.compile(r"^\| `([A-Z0-9_]+)` \|", re.MULTILINE)


def documented_settings() -> dict[str, set[str]]:
    """Service → the variables the committed reference lists for it."""
    block = generated_block(OPERATIONS.read_text(), "settings-reference")
    parts = SECTION.split(block)
    return {
        service: set(ROW_NAME.findall(body)) for service, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_every_setting_in_code_is_in_the_reference_and_the_reverse(gen_docs):
    in_code = gen_docs.settings_env_names()
    in_docs = documented_settings()
    problems = []
    for service in sorted(set(in_code) | set(in_docs)):
        code, docs = in_code.get(service, set()), in_docs.get(service, set())
        problems += [
            f"{service}: {name} is read by the code but missing from the reference"
            for name in sorted(code - docs)
        ]
        problems += [
            f"{service}: {name} is in the reference but not read by the code" for name in sorted(docs - code)
        ]
    assert not problems, "\n".join(problems) + "\nrun `make docs`"


def test_the_reference_is_what_the_settings_classes_generate(gen_docs):
    committed = generated_block(OPERATIONS.read_text(), "settings-reference")
    expected = gen_docs.render_settings_reference().rstrip("\n") + "\n"
    assert committed == expected, "types, defaults or descriptions changed in the code: run `make docs`"


def test_every_setting_named_anywhere_in_the_docs_exists_in_the_code(gen_docs):
    known = set().union(*gen_docs.settings_env_names().values())
    unknown = []
    for path in markdown_files():
        for line_number, line in enumerate(path.read_text().splitlines(), start=1):
            for name in SETTING_NAME.findall(line):
                if name not in known:
                    unknown.append(f"{path.relative_to(ROOT)}:{line_number}: {name}")
    assert not unknown, "settings named in the docs that no settings class reads:\n" + "\n".join(unknown)


def test_secret_defaults_are_never_shown(gen_docs):
    for doc in gen_docs.settings_docs():
        for setting in doc.settings:
            if setting.secret:
                assert setting.default in ("unset", "set (hidden)"), setting
