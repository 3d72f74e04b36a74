"""Pillow threads named where the operating system shows them (top -H, /proc/PID/task/*/comm).

Python names its threads for itself only; every thread of a member shows as `python` to the OS.
Named `pillow_0`, `pillow_1`, ..., their CPU can be told from the event loop's and the helper
threads', which is how `make bench` splits a member's CPU into Pillow and the member's own work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

_PR_SET_NAME = 15  # prctl(2): the calling thread's name, at most 15 bytes
OS_NAME_BYTES = 15


def _prctl() -> Callable[..., int] | None:
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(path).prctl  # Linux only
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _prctl()


def name_os_thread() -> None:
    """Give the calling thread's Python name to the OS (cut to 15 bytes); a no-op where it cannot."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_NAME, threading.current_thread().name.encode()[:OS_NAME_BYTES], 0, 0, 0)
