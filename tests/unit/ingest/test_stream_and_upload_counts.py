"""The in-process counts behind the stream and upload-in-progress limits."""

from __future__ import annotations

from ingest.limits import UploadsInProgress
from ingest.portal.streams import StreamLimits, StreamSlot, StreamSlots


def test_streams_are_refused_by_the_tightest_limit_and_released_once():
    slots = StreamSlots(StreamLimits(per_key=2, per_tenant=3, total=4))

    a1, a2, a3 = (slots.take("acme", "k1") for _ in range(3))
    b1 = slots.take("acme", "k2")
    b2 = slots.take("acme", "k2")
    c1, c2 = slots.take("beta", "k3"), slots.take("beta", "k4")

    assert isinstance(a1, StreamSlot)
    assert isinstance(a2, StreamSlot)
    assert (a3, b2) == ("key", "tenant")
    assert isinstance(b1, StreamSlot)
    assert isinstance(c1, StreamSlot)
    assert c2 == "total"
    a1.release()
    a1.release()  # twice: counted once
    assert slots.open == 3
    assert isinstance(slots.take("beta", "k4"), StreamSlot)


def test_uploads_in_progress_are_capped_per_key_and_given_back():
    uploads = UploadsInProgress(per_key=2)

    assert [uploads.enter("k1") for _ in range(3)] == [True, True, False]
    assert uploads.enter("k2")
    uploads.leave("k1")
    assert uploads.enter("k1")
