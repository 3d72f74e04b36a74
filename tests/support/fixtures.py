"""Fixtures every suite on the running stack shares (loaded by tests/conftest.py as a plugin).

Image hosts stay in their test modules, because each serves its own pictures; they are built
with `tests.support.servers.serving` so that starting and stopping is written once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.servers import LocalServer, serving


@pytest.fixture
async def subscriber() -> AsyncIterator[LocalServer]:
    """A webhook receiver on 127.0.0.1 that records every call; a test gives it its routes."""
    async with serving() as server:
        yield server
