"""Work functions for pool tests, in a module that spawned workers import cheaply."""

from __future__ import annotations

import os
import signal


def die(data: bytes, options: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def ignores_sigterm(data: bytes, options: object) -> str:
    os.kill(os.getpid(), signal.SIGTERM)
    return "still here"
