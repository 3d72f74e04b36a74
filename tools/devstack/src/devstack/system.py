"""Installing what is missing from Debian's packages."""

from __future__ import annotations

import os
import shutil
import subprocess

_apt_updated = False


def apt_install(*packages: str) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if not _apt_updated:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)  # noqa: S603
        _apt_updated = True
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *packages], check=True, env=env)  # noqa: S603


def ensure_commands(commands: dict[str, str]) -> None:
    """Install the Debian package of each command that is not on PATH."""
    missing = sorted({pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None})
    if missing:
        apt_install(*missing)
