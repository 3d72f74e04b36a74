"""The stream caps as the tracker API applies them: the 429 names the cap reached, slots come back."""

from __future__ import annotations

import json
from uuid import uuid4

from pipeline_runtime.stream_slots import StreamLimits, StreamSlot, StreamSlots
from tracker.api.progress_stream import too_many_streams


def test_each_refusal_names_the_cap_reached_and_asks_to_retry_later():
    slots = StreamSlots(StreamLimits(per_key=1, per_tenant=2, total=3))
    key_a, key_b, key_c = uuid4(), uuid4(), uuid4()
    taken = [slots.take("acme", key_a), slots.take("acme", key_b), slots.take("globex", key_c)]

    refusals = [slots.take("acme", key_a), slots.take("acme", uuid4()), slots.take("initech", uuid4())]
    answers = [too_many_streams(slots, reached) for reached in refusals if isinstance(reached, str)]

    assert all(isinstance(slot, StreamSlot) for slot in taken)
    assert refusals == ["key", "tenant", "total"]
    details = [json.loads(a.body)["detail"] for a in answers]
    assert [d.split(" already")[0] for d in details] == ["this key", "this tenant", "the server"]
    assert {(a.status_code, a.headers["retry-after"]) for a in answers} == {(429, "5")}


def test_a_slot_released_twice_is_given_back_once():
    slots = StreamSlots(StreamLimits(per_key=1, per_tenant=5, total=5))
    key = uuid4()
    slot = slots.take("acme", key)
    assert isinstance(slot, StreamSlot)

    slot.release()
    slot.release()  # the response's end and a failed start may both release

    assert (slots.open, slots.held("acme", key)) == (0, (0, 0))
    assert isinstance(slots.take("acme", key), StreamSlot)
