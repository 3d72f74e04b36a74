"""The chaos suite prints one table row per fault at the end of the run."""

from __future__ import annotations

import pytest

from tests.support.report import table_lines

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
    terminalreporter.section("chaos suite")
    for line in table_lines(COLUMNS, ROWS):
        terminalreporter.write_line(line)
