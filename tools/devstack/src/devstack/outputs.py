"""The compressed images that a test session or a benchmark stored, removed when it ends.

The `test` profile stores its outputs as files under its media directory, a directory per
request. Left there, they piled up run after run: one `make test` left 62 requests' outputs
(161 MB), a pipeline benchmark about 0.9 GB.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def outputs_removed(media_dir: Path) -> Iterator[None]:
    """What appears in `media_dir` meanwhile is removed on the way out, and only that: a stack
    that was up before keeps its own outputs."""
    before = _entries(media_dir)
    try:
        yield
    finally:
        for made in _entries(media_dir) - before:
            if made.is_dir() and not made.is_symlink():
                shutil.rmtree(made, ignore_errors=True)
            else:
                made.unlink(missing_ok=True)


def _entries(media_dir: Path) -> set[Path]:
    return set(media_dir.iterdir()) if media_dir.is_dir() else set()
