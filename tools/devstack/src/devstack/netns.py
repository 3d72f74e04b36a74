"""Compressor hosts apart: a Linux network namespace per host, joined by a bridge of our own.

Root namespace: bridge `imgp-br0` holding BRIDGE_ADDRESS/24 (Kafka's BRIDGE listeners,
PostgreSQL, the object store and the image origin listen there too). Host n: namespace
`imgp-hN` whose only links are its loopback and `eth0` (10.77.0.(10+n)), the far end of a
veth pair whose near end `imgp-hNv` is enslaved to the bridge. The namespace has no default
route, so the bridge's subnet is all a host can reach. Every name carries the `imgp-` prefix;
`down` removes exactly the ones `up` creates.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from .profiles import BRIDGE_ADDRESS, BRIDGE_PREFIX, Profile

BRIDGE = "imgp-br0"


def namespace(host: int) -> str:
    return f"imgp-h{host}"


def host_link(host: int) -> str:
    """The root-namespace end of host `host`'s veth pair: taking it down cuts the host off."""
    return f"imgp-h{host}v"


def host_address(host: int) -> str:
    return f"{BRIDGE_PREFIX}.{10 + host}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, names built above
        ["ip", *args],  # noqa: S607
        check=check,
        capture_output=True,
        text=True,
        timeout=20,
    )


def _exists(kind: str, name: str) -> bool:
    if kind == "netns":
        return name in _ip("netns", "list").stdout.split()
    return _ip("link", "show", name, check=False).returncode == 0


def up(profile: Profile) -> None:
    """Create the bridge and one namespace per compressor host (idempotent)."""
    if not profile.bridged:
        return
    if not _exists("link", BRIDGE):
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    for host in range(1, profile.compressor_hosts + 1):
        ns, near = namespace(host), host_link(host)
        if not _exists("netns", ns):
            _ip("netns", "add", ns)
        if not _exists("link", near):
            _ip("link", "add", near, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", near, "master", BRIDGE)
            _ip("-n", ns, "addr", "add", f"{host_address(host)}/24", "dev", "eth0")
        _ip("link", "set", near, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", "eth0", "up")


def down(profile: Profile) -> None:
    """Remove the namespaces, their veth pairs and the bridge (whatever of them exists)."""
    if not profile.bridged:
        return
    for host in range(1, profile.compressor_hosts + 1):
        if _exists("link", host_link(host)):
            _ip("link", "del", host_link(host))  # deletes its peer in the namespace too
        if _exists("netns", namespace(host)):
            _ip("netns", "del", namespace(host))
    if _exists("link", BRIDGE):
        _ip("link", "del", BRIDGE)


def set_link(host: int, state: str) -> None:
    """`down` cuts host `host` off the bridge (as a pulled cable would); `up` reconnects it."""
    _ip("link", "set", host_link(host), state)


def exec_prefix(host: int) -> list[str]:
    """Run a command inside host `host`'s namespace (`ip netns exec` execs it: same pid)."""
    return ["ip", "netns", "exec", namespace(host)]


def pids(host: int) -> list[int]:
    """Every process running in host `host`'s namespace."""
    out = _ip("netns", "pids", namespace(host), check=False).stdout
    return [int(p) for p in out.split()]


def kill_all(host: int) -> list[int]:
    """SIGKILL every process of host `host`, as a host losing power would."""
    killed = pids(host)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return killed
