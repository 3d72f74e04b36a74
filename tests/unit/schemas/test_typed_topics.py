"""Decoding by topic is typed: the type checker sees each topic's own event type.

This runs mypy (the project's configuration) over a small program, so a regression in the
generic `Topic` shows here and not only as an `EventBase` slipping through some service.
"""

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """\
from typing import assert_type

from pipeline_schemas import (
    IMAGE_COMPRESSED, IMAGE_REQUESTED, IMAGE_RESULTS, REQUEST_COMPLETED, TOPICS,
    EventBase, ImageCompressed, ImageCompressionFailed, ImageRequested, ImageResult,
    RequestCompleted, decode,
)

assert_type(decode(IMAGE_REQUESTED, b""), ImageRequested)
assert_type(IMAGE_REQUESTED.decode(b""), ImageRequested)
assert_type(decode(IMAGE_RESULTS, b""), ImageCompressed | ImageCompressionFailed)
assert_type(decode(IMAGE_COMPRESSED, b""), ImageCompressed | ImageCompressionFailed)
assert_type(decode(REQUEST_COMPLETED, b""), RequestCompleted)
assert_type(decode("image.results", b""), EventBase)
assert_type(TOPICS["image.results"].decode(b""), EventBase)
result: ImageResult = decode(IMAGE_RESULTS, b"")
wrong: ImageCompressed = decode(IMAGE_REQUESTED, b"")  # the one error expected
"""


def test_each_topic_decodes_to_its_own_event_type_for_the_type_checker(tmp_path):
    program = tmp_path / "uses_topics.py"
    program.write_text(PROGRAM)
    report, errors, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--no-warn-unused-configs",  # the overrides for service dependencies do not apply here
            "--hide-error-context",
            str(program),
        ]
    )
    wrong_line = next(n for n, text in enumerate(PROGRAM.splitlines(), 1) if text.startswith("wrong:"))
    assert errors == ""
    assert status == 1, report
    lines = report.strip().splitlines()
    assert len(lines) == 1, report
    assert f"uses_topics.py:{wrong_line}: error: Incompatible types in assignment" in lines[0]
