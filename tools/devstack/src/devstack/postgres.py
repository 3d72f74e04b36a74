"""A PostgreSQL server of the project's own, from Debian's packages, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg

from . import ports
from .profiles import BRIDGE_ADDRESS, BRIDGE_CIDR, Profile
from .system import apt_install

READY_TIMEOUT = 60.0


def bin_dir() -> Path:
    """The newest installed server's binaries, installing Debian's package if none is."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if not found:
        apt_install("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent


def _version_key(path: str) -> int:
    return int(Path(path).parts[-3])


def data_dir(profile: Profile) -> Path:
    return profile.run_dir / "pg"


def _as_postgres(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run a server binary as the `postgres` user (initdb refuses root)."""
    if os.geteuid() != 0:
        return subprocess.run(argv, check=True, **kwargs)  # noqa: S603
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, **kwargs)  # noqa: S603, S607


def init(profile: Profile) -> None:
    data = data_dir(profile)
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    _as_postgres(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        stdout=subprocess.DEVNULL,
    )


def allow_bridge(profile: Profile) -> None:
    """Compressor hosts log in over the bridge (trust, as on loopback: the subnet is ours)."""
    hba = data_dir(profile) / "pg_hba.conf"
    rule = f"host all all {BRIDGE_CIDR} trust"
    if profile.bridged and rule not in hba.read_text():
        with hba.open("a") as out:
            out.write(f"\n{rule}\n")


def server_options(profile: Profile) -> str:
    opts = [
        f"-p {profile.postgres_port}",
        f"-c listen_addresses=127.0.0.1,{BRIDGE_ADDRESS}"
        if profile.bridged
        else "-c listen_addresses=127.0.0.1",
        f"-k {data_dir(profile)}",
        "-c max_connections=200",
        "-c shared_buffers=128MB",
    ]
    if not profile.fsync:
        # The test stack skips fsync (safe while the host itself does not crash) but keeps
        # synchronous_commit on: without it a server crash loses commits that clients already
        # saw succeed, and the chaos suite's "restart PostgreSQL" caught exactly that.
        opts += ["-c fsync=off", "-c full_page_writes=off"]
    return " ".join(opts)


def postmaster_pid(profile: Profile) -> int | None:
    """The server's pid from its postmaster.pid, or None without one."""
    try:
        return int((data_dir(profile) / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def is_running(profile: Profile) -> bool:
    pid = postmaster_pid(profile)
    return pid is not None and Path(f"/proc/{pid}").exists()


def ports_of(profile: Profile) -> dict[str, dict[str, int]]:
    return {} if profile.external_database else {"postgres": {"postgres": profile.postgres_port}}


def start(profile: Profile) -> None:
    """Start the server unless DATABASE_URL names one; then wait and create the database."""
    if profile.external_database is None:
        if not is_running(profile):  # before initdb: a taken port leaves nothing behind
            ports.require_free(ports_of(profile)["postgres"])
        init(profile)
        allow_bridge(profile)
        if not is_running(profile):
            log = profile.run_dir / "logs" / "postgres.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.touch()
            if os.geteuid() == 0:
                shutil.chown(log, "postgres", "postgres")
            _as_postgres(
                [
                    str(bin_dir() / "pg_ctl"),
                    "-D",
                    str(data_dir(profile)),
                    "-l",
                    str(log),
                    "-o",
                    server_options(profile),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                stdout=subprocess.DEVNULL,
            )
        asyncio.run(create_database(profile.database_url))
    asyncio.run(wait_ready(profile.database_url))


def stop(profile: Profile, mode: str = "fast") -> None:
    if profile.external_database is None and is_running(profile):
        _continue(profile)
        _as_postgres(
            [str(bin_dir() / "pg_ctl"), "-D", str(data_dir(profile)), "-m", mode, "-w", "-t", "60", "stop"],
            stdout=subprocess.DEVNULL,
        )


def _continue(profile: Profile) -> None:
    """SIGCONT to the server's process group: stopped (the bench pauses the stack), it would not
    shut down and pg_ctl would give up after its timeout."""
    postmaster = postmaster_pid(profile)
    if postmaster is not None:
        with contextlib.suppress(OSError):  # gone meanwhile
            os.killpg(os.getpgid(postmaster), signal.SIGCONT)


async def wait_ready(dsn: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
            await conn.close()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL not ready after {timeout:.0f}s: {exc}") from exc
            await asyncio.sleep(0.3)


async def create_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist (connecting to `postgres`)."""
    base, _, name = dsn.rpartition("/")
    await wait_ready(f"{base}/postgres")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(dsn: str) -> None:
    base, _, name = dsn.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
