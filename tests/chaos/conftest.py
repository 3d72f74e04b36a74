"""The chaos suite prints one table row per fault at the end of the run."""

from __future__ import annotations

import pytest

ROWS: list[dict] = []
COLUMNS = [
    "fault",
    "images expected",
    "images done",
    "duplicates counted",
    "redundant events ignored",
    "webhook ids delivered",
    "attempts",
    "outcome",
]


@pytest.fixture
def chaos_report():
    return ROWS


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in ROWS)) for c in COLUMNS]
    terminalreporter.section("chaos suite")
    terminalreporter.write_line(" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    terminalreporter.write_line("-+-".join("-" * w for w in widths))
    for row in ROWS:
        terminalreporter.write_line(
            " | ".join(str(row.get(c, "")).ljust(w) for c, w in zip(COLUMNS, widths, strict=True))
        )
