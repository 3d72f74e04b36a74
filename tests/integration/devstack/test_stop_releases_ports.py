"""A stopped service has released its port when devstack's stop returns, even after SIGKILL.

A killed process's leader shows as a zombie while its other threads (librdkafka's, asyncpg's)
are still exiting, and its listening socket closes only with the last of them: measured with
the notifier, 5 of 8 kill_hard calls returned with its port still listening. A restart right
after (what the fault tests do) then met its own predecessor's port.
"""

from __future__ import annotations

import socket
import sys
import time

from devstack import ports, procs
from devstack.profiles import REPO_ROOT

ROUNDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while ports.is_free(port):
        assert time.monotonic() < deadline, f"nothing listens on {port} after {timeout:.0f}s"
        time.sleep(0.1)


def test_a_killed_notifier_has_released_its_port_when_kill_hard_returns(infrastructure):
    profile = infrastructure
    name = "notifier-port-probe"  # not the session's notifier, which other tests may be using
    for _ in range(ROUNDS):
        port = free_port()
        env = {**profile.service_env(), "NOTIFIER_PORT": str(port), "SERVICE_INSTANCE": name}
        procs.start(profile.run_dir, name, [sys.executable, "-m", "notifier"], env, REPO_ROOT)
        try:
            wait_listening(port)
            time.sleep(1.5)  # its consumer has joined its group: librdkafka threads busy too
        finally:
            assert procs.kill_hard(profile.run_dir, name)
        assert ports.is_free(port), f"port {port} still held by {ports.holder(port)}"
