"""What devstack gives compressor members: allocator settings and a kept media key secret."""

from __future__ import annotations

import dataclasses

from compressor.config import Settings
from devstack import profiles, services
from devstack.profiles import Profile


def isolated(monkeypatch, tmp_path) -> Profile:
    monkeypatch.setattr(Profile, "run_dir", property(lambda self: tmp_path / self.name))
    return profiles.test_profile(7)


def test_compressor_members_give_freed_memory_back(monkeypatch, tmp_path):
    profile = isolated(monkeypatch, tmp_path)
    for name in ("compressor-1", "compressor-2"):
        env = services.own_env(profile, name)
        assert env["MALLOC_ARENA_MAX"] == "2"
        assert int(env["MALLOC_TRIM_THRESHOLD_"]) > 0
    assert "MALLOC_ARENA_MAX" not in services.own_env(profile, "ingest")


def test_the_media_key_secret_is_made_once_and_kept_so_reruns_overwrite(monkeypatch, tmp_path):
    profile = isolated(monkeypatch, tmp_path)
    first = profile.service_env()["COMPRESSOR_MEDIA_KEY_SECRET"]
    again = dataclasses.replace(profile).service_env()["COMPRESSOR_MEDIA_KEY_SECRET"]  # a later start
    assert first == again
    assert (tmp_path / profile.name / "media-key-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("COMPRESSOR_MEDIA_KEY_SECRET", first)
    assert Settings(_env_file=None).media_secret() == first.encode()  # long enough for a member
    other = dataclasses.replace(profile, name="test-8")
    assert other.service_env()["COMPRESSOR_MEDIA_KEY_SECRET"] != first  # per deployment
