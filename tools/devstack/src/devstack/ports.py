"""Before a stack starts: is any of its ports taken, and by which process?"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .profiles import Profile


def stack_ports(profile: Profile) -> dict[str, int]:
    """Every port the profile listens on, by what uses it."""
    ports = {
        "postgres": profile.postgres_port,
        "ingest": profile.ingest_port,
        "tracker-api": profile.tracker_port,
        "notifier": profile.notifier_port,
        "sample-images": profile.samples_port,
    }
    if profile.external_kafka is None:
        for node in range(1, profile.brokers + 1):
            client, controller, bridge = profile.node_ports(node)
            ports |= {f"kafka-{node}": client, f"kafka-{node} controller": controller}
            if profile.bridged:
                ports[f"kafka-{node} bridge"] = bridge
    if profile.object_store_port:
        ports["object-store"] = profile.object_store_port
    return ports


def _listening_inode(port: int) -> str | None:
    """The socket inode listening on `port` (IPv4 or IPv6), from /proc/net/tcp*."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers themselves do: connections of a stopped server in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_free(profile: Profile) -> None:
    """Raise with one line per taken port, naming the process that holds it."""
    taken = [
        f"port {port} ({name}) is taken by {holder(port)}"
        for name, port in stack_ports(profile).items()
        if not is_free(port)
    ]
    if taken:
        raise RuntimeError("; ".join(taken))
