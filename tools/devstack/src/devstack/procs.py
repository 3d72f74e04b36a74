"""Background processes tracked by pid files, stopped by pid (never by name)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): a pid reused later has another."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return None


def read_pid(run_dir: Path, name: str) -> int | None:
    """The live pid of `name`, or None; a pid file whose process is gone or reused counts as none."""
    path = pid_file(run_dir, name)
    try:
        pid_text, _, ticks = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    if not is_alive(pid) or (ticks and start_ticks(pid) != ticks):
        return None
    return pid


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def start(run_dir: Path, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Start `argv` in its own session, logging to run_dir/logs/name.log; returns its pid."""
    existing = read_pid(run_dir, name)
    if existing:
        return existing
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    with open(run_dir / "logs" / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by this module's callers
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file(run_dir, name).write_text(f"{proc.pid} {start_ticks(proc.pid) or ''}".strip())
    return proc.pid


def stop(run_dir: Path, name: str, *, grace: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the process group of `name`: `sig`, then SIGKILL after `grace` seconds."""
    pid = read_pid(run_dir, name)
    pid_file(run_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    ticks = start_ticks(pid)
    _signal_group(pid, sig)
    _signal_group(pid, signal.SIGCONT)  # a stopped group (the bench pauses the stack) acts on it now
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.1)
    if is_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    _wait_released(pid, ticks, 10.0)
    return True


def kill_hard(run_dir: Path, name: str) -> bool:
    """SIGKILL at once, as a crash would (used by fault tests)."""
    return stop(run_dir, name, grace=0.0, sig=signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _released(pid: int, ticks: str | None) -> bool:
    """Every thread of `pid` has exited (or the pid is another process's by now)."""
    if ticks is not None and start_ticks(pid) != ticks:
        return True
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))  # the zombie leader counts as one
    except FileNotFoundError:
        return True
    return threads <= 1 and not is_alive(pid)


def _wait_released(pid: int, ticks: str | None, seconds: float) -> None:
    """Until the process has really gone: its leader shows as a zombie while its other threads
    are still exiting, and only the last one closes its files, listening sockets included. A
    stopped server's port is free again when stop() returns (a restart may bind it at once)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not _released(pid, ticks):
        time.sleep(0.02)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def running(run_dir: Path) -> dict[str, int]:
    """Every tracked process of this run directory that is alive, by name."""
    pids = {}
    for path in sorted((run_dir / "pids").glob("*.pid")):
        pid = read_pid(run_dir, path.stem)
        if pid:
            pids[path.stem] = pid
    return pids
