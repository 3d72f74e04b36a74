"""Where a round's image.requested events go (pure): a few partitions per round, rotating.

librdkafka sends one ProduceRequest per partition that a batch touches (confluentinc/librdkafka#1700),
and a compressor member's long-polling fetch returns as soon as one partition has data: a round of
7 images hashed by image id over 12 partitions cost about 6 Produce and 6 Fetch requests. Putting
a round's images into `ceil(images / per_partition)` partitions costs one of each per partition.

Consecutive partitions of the whole sequence (within a round and across rounds) are `stride` apart,
with `stride` coprime to the partition count, so every partition, and with it every member of the
compressor group, gets work once every `len(partitions)` partitions handed out. The stride is
the coprime nearest to 0.618 x the count: the group's assignment is unknown here, and such a
stride alternates between the two halves of the list (contiguous ranges of partitions per member)
and, when odd, between even and odd partitions (partitions dealt out round robin).

Placement only spreads load; fairness (who is admitted) is decided before it, in `scheduling`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

GOLDEN = 0.618


def stride_for(count: int) -> int:
    """The step between consecutive partitions: coprime to `count`, near 0.618 x `count`."""
    if count <= 2:
        return 1
    ideal = count * GOLDEN
    candidates = [s for s in range(1, count) if math.gcd(s, count) == 1]
    return min(candidates, key=lambda s: (abs(s - ideal), s))


def round_partitions(
    partitions: Sequence[int], images: int, cursor: int, per_partition: int
) -> tuple[list[int], int]:
    """The partitions of one round of `images`, and the cursor for the next round.

    `cursor` counts the partitions handed out so far (it only needs to start anywhere); no
    partitions (unknown, an empty round, or `per_partition` 0) means the producer's own
    partitioner, by key.
    """
    if not partitions or images <= 0 or per_partition <= 0:
        return [], cursor
    count = len(partitions)
    used = min(count, -(-images // per_partition))
    stride = stride_for(count)
    chosen = [partitions[((cursor + i) * stride) % count] for i in range(used)]
    return chosen, (cursor + used) % count


def spread(images: int, partitions: Sequence[int]) -> list[int | None]:
    """Each image's partition: dealt round robin over `partitions` (none: the key decides)."""
    if not partitions:
        return [None] * images
    return [partitions[i % len(partitions)] for i in range(images)]
