"""The "Limits" section of docs/operations.md lists every limit setting, with the code's default.

A setting is a limit when its name says so (MAX, TIMEOUT, LIMIT, CAP, _PER_, BURST, EXCERPT,
CONNECTIONS); a new one that is not in the section, or a default changed in the code only, fails
here, so the list cannot drift from the settings classes.
"""

from __future__ import annotations

import re

from .conftest import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
LIMIT_NAME = re.compile(r"MAX|TIMEOUT|LIMIT|_CAP|CAP_|_PER_|BURST|EXCERPT|CONNECTIONS")
# | limit | `SETTING` | `default` | beyond it |
ROW = re.compile(r"^\| [^|]+ \| `([A-Z0-9_]+)` \| (`[^`|]*`) \| [^|]+ \|$", re.MULTILINE)


def limits_section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("\n## Limits\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def documented_limits() -> dict[str, str]:
    """Setting → the default its row shows (as the settings reference writes defaults)."""
    return dict(ROW.findall(limits_section()))


def limit_settings(gen_docs) -> dict[str, str]:
    """Every limit setting the code reads → its default (as the settings reference renders it)."""
    found: dict[str, set[str]] = {}
    for doc in gen_docs.settings_docs():
        for setting in doc.settings:
            if LIMIT_NAME.search(setting.env):
                found.setdefault(setting.env, set()).add(setting.default)
    assert all(len(defaults) == 1 for defaults in found.values()), f"one name, several defaults: {found}"
    return {name: defaults.pop() for name, defaults in found.items()}


def test_every_limit_setting_is_listed_with_its_default(gen_docs):
    in_code, in_docs = limit_settings(gen_docs), documented_limits()

    missing = sorted(set(in_code) - set(in_docs))
    wrong = sorted(
        f"{n}: docs {in_docs[n]}, code {d}" for n, d in in_code.items() if n in in_docs and in_docs[n] != d
    )
    assert not missing, f"limit settings missing from the Limits section of docs/operations.md: {missing}"
    assert not wrong, f"defaults in the Limits section differ from the code: {wrong}"


def test_every_setting_in_the_limits_section_exists(gen_docs):
    known = set().union(*gen_docs.settings_env_names().values())
    assert not sorted(set(documented_limits()) - known)


def test_the_limit_name_pattern_finds_the_limits_issue_12_names():
    names = ["INGEST_MAX_UPLOAD_BYTES", "HTTP_HEADER_TIMEOUT_SECONDS", "INGEST_UPLOAD_BURST"]
    names += ["NOTIFIER_RESPONSE_EXCERPT_BYTES", "INGEST_GATEWAY_MAX_STREAMS_PER_KEY"]
    assert all(LIMIT_NAME.search(name) for name in names)
    assert not LIMIT_NAME.search("INGEST_PUBLIC_BASE_URL")
