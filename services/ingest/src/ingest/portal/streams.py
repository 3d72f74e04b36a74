"""How many progress streams may be open through this gateway: per key, per tenant and in all.

A stream holds a connection to the tracker API for as long as the request runs (minutes). Without
these bounds one tenant opening hundreds of streams took every connection, and every other
tenant's status read waited out its 5 s pool timeout (a 504). The counting is shared with the
tracker API's own stream caps: pipeline_runtime.stream_slots.
"""

from __future__ import annotations

from pipeline_runtime.stream_slots import Refusal, StreamLimits, StreamSlot, StreamSlots

__all__ = ["Refusal", "StreamLimits", "StreamSlot", "StreamSlots"]
