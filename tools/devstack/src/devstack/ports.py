"""Before a server starts: is any of its ports taken, and by which process?

Every server devstack starts (PostgreSQL, each Kafka node, the object store, each service, the
sample image origin) checks its own ports just before it is started, and `infra_up` /
`services.start_all` check every part that is not running yet before starting any: a taken port
is reported in one line naming the process that holds it, instead of a server failing to bind
(or, worse, a health check answered by someone else's server on that port).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

PROC_NET_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
LISTEN = "0A"


class PortsTaken(RuntimeError):
    """Ports a stack needs are held by other processes (the message is one line)."""


def _listening_inode(port: int) -> str | None:
    """The inode of a socket listening on `port` on any address (IPv4 or IPv6), from /proc/net."""
    for table in PROC_NET_TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return fields[9]
    return None


def holder(port: int) -> str:
    """`pid N (command)` of the process that listens on `port`, or `an unknown process`."""
    inode = _listening_inode(port)
    if inode:
        target = f"socket:[{inode}]"
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name} ({cmd.strip()[:80]})"
            except OSError:
                continue
    return "an unknown process"


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on `port` on any address, and `host` may bind it."""
    if _listening_inode(port) is not None:  # also on an address other than `host` (the bridge)
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers themselves do: connections of a stopped server in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free(ports: Mapping[str, int]) -> None:
    """Raise PortsTaken, one line naming each taken port, what needs it and the holder."""
    taken = [
        f"port {port} ({name}) is taken by {holder(port)}"
        for name, port in ports.items()
        if not is_free(port)
    ]
    if taken:
        raise PortsTaken("; ".join(taken))


def check_parts(parts: Mapping[str, Mapping[str, int]], running: Callable[[str], bool]) -> None:
    """require_free for the ports of every part (process name -> its ports) that is not running."""
    require_free(
        {label: port for part, ports in parts.items() if not running(part) for label, port in ports.items()}
    )
