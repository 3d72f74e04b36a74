"""Stopping a process the bench paused (SIGSTOP): it ends by the polite signal, not by SIGKILL after the grace."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from devstack import procs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc are Linux's")


def test_a_stopped_process_group_ends_by_sigterm_without_escalating_to_sigkill(tmp_path: Path, monkeypatch):
    sent: list[int] = []
    signal_group = procs._signal_group

    def recording(pid: int, sig: int) -> None:
        sent.append(sig)
        signal_group(pid, sig)

    monkeypatch.setattr(procs, "_signal_group", recording)
    # A SIGTERM handler, as every service, PostgreSQL and the JVM have: a stopped process keeps such
    # a signal pending until it continues (one that kills by default ends it at once, stopped or not).
    handles_sigterm = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); print('ready', flush=True); time.sleep(60)"
    pid = procs.start(tmp_path, "sleeper", [sys.executable, "-c", handles_sigterm], {}, tmp_path)
    log = tmp_path / "logs" / "sleeper.log"
    for _ in range(100):  # the handler is set once it says so (at most 10 s)
        if log.exists() and "ready" in log.read_text():
            break
        time.sleep(0.1)
    os.killpg(pid, signal.SIGSTOP)

    assert procs.stop(tmp_path, "sleeper", grace=5.0)

    assert not procs.is_alive(pid)
    assert signal.SIGTERM in sent
    assert signal.SIGKILL not in sent
