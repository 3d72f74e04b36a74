"""Installing what is missing from Debian's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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


DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def maven_classpath(pom: Path, target: Path, properties: dict[str, str]) -> Path:
    """Resolve `pom`'s runtime jars into `target` once, with Maven; later calls download nothing.

    The jars land in a sibling directory first and are renamed into place, so an interrupted
    download never leaves a half classpath that looks complete.
    """
    if (target / ".complete").exists():
        return target
    ensure_commands({"java": "openjdk-17-jre-headless", "mvn": "maven"})
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(  # noqa: S603 - mvn from PATH by design (installed from Debian when missing)
        [  # noqa: S607
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
            *(f"-D{name}={value}" for name, value in properties.items()),
        ],
        check=True,
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    (target / ".complete").touch()
    return target
