"""Outputs stored during a test session or a benchmark are removed at its end, and only those."""

from __future__ import annotations

import pytest
from devstack.outputs import outputs_removed


def test_what_appeared_meanwhile_is_removed_and_what_was_there_stays(tmp_path):
    media = tmp_path / "media"
    (media / "earlier-request").mkdir(parents=True)
    (media / "earlier-request" / "a.jpg").write_bytes(b"kept")
    with outputs_removed(media):
        (media / "new-request").mkdir()
        (media / "new-request" / "b.jpg").write_bytes(b"made")
        (media / ".stray.tmp").write_bytes(b"made")
    assert sorted(p.name for p in media.iterdir()) == ["earlier-request"]
    assert (media / "earlier-request" / "a.jpg").read_bytes() == b"kept"


def test_a_media_directory_made_meanwhile_is_emptied(tmp_path):
    media = tmp_path / "media"
    with outputs_removed(media):
        (media / "request").mkdir(parents=True)
        (media / "request" / "b.jpg").write_bytes(b"made")
    assert list(media.iterdir()) == []


def _failing_run(media):
    with outputs_removed(media):
        (media / "request").mkdir()
        raise RuntimeError("the benchmark failed")


def test_outputs_are_removed_when_the_run_fails_too(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    with pytest.raises(RuntimeError, match="failed"):
        _failing_run(media)
    assert list(media.iterdir()) == []


def test_a_link_made_meanwhile_is_removed_not_followed(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.jpg").write_bytes(b"not ours")
    with outputs_removed(media):
        (media / "link").symlink_to(elsewhere, target_is_directory=True)
    assert list(media.iterdir()) == []
    assert (elsewhere / "keep.jpg").read_bytes() == b"not ours"
