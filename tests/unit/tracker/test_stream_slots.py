"""The counts of open progress streams (pure): caps in order, idempotent release, no stale entries."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pipeline_runtime.auth import Principal
from tracker.api.stream_slots import StreamCaps, StreamSlots, TooManyStreams


def caller(tenant: str = "acme") -> Principal:
    return Principal(uuid4(), tenant, frozenset({"read"}))


def test_a_released_slot_is_given_back_once_and_leaves_no_entry_behind():
    slots = StreamSlots(StreamCaps(per_key=1, per_tenant=5, total=5))
    key = caller()
    slot = slots.take(key)

    with pytest.raises(TooManyStreams, match="this key"):
        slots.take(key)
    slot.release()
    slot.release()  # a second release (response end after generator end) changes nothing

    assert (slots.open, slots.held(key)) == (0, (0, 0))
    assert not slots._by_key
    assert not slots._by_tenant
    slots.take(key).release()


def test_the_tenant_cap_counts_every_key_of_the_tenant_and_no_other_tenant():
    slots = StreamSlots(StreamCaps(per_key=5, per_tenant=2, total=10))
    slots.take(caller("acme"))
    slots.take(caller("acme"))

    with pytest.raises(TooManyStreams, match="this tenant"):
        slots.take(caller("acme"))
    slots.take(caller("globex"))
    assert slots.open == 3
