"""Where a round's image.requested events go: a few partitions per round, every partition in turn."""

from __future__ import annotations

import math
import uuid
from collections import Counter

import pytest
from ingest.admission_store import outbox_rows
from ingest.placement import round_partitions, spread, stride_for

TWELVE = list(range(12))


@pytest.mark.parametrize("count", range(1, 40))
def test_the_stride_visits_every_partition(count):
    stride = stride_for(count)

    assert math.gcd(stride, count) == 1
    assert sorted((i * stride) % count for i in range(count)) == list(range(count))


def test_the_stride_of_twelve_partitions_alternates_halves_and_parities():
    order = [(i * stride_for(12)) % 12 for i in range(12)]

    assert stride_for(12) == 7
    assert order == [0, 7, 2, 9, 4, 11, 6, 1, 8, 3, 10, 5]
    assert all((a < 6) != (b < 6) for a, b in zip(order[:6], order[1:6], strict=False))
    assert all(a % 2 != b % 2 for a, b in zip(order, order[1:], strict=False))


@pytest.mark.parametrize(("images", "used"), [(1, 1), (7, 1), (8, 1), (9, 2), (16, 2), (23, 3), (500, 12)])
def test_one_partition_per_few_images_never_more_than_the_topic_has(images, used):
    chosen, _ = round_partitions(TWELVE, images, cursor=0, per_partition=8)

    assert len(chosen) == used
    assert len(set(chosen)) == used
    assert set(chosen) <= set(TWELVE)


def test_consecutive_rounds_give_every_partition_work():
    cursor, seen = 0, []
    for _ in range(12):  # twelve rounds of one partition each
        chosen, cursor = round_partitions(TWELVE, 6, cursor, per_partition=8)
        seen += chosen

    assert sorted(seen) == TWELVE


def test_rounds_of_several_partitions_also_cover_the_topic_evenly():
    cursor, used = 0, Counter()
    for _ in range(24):  # 20 images a round: three partitions each
        chosen, cursor = round_partitions(TWELVE, 20, cursor, per_partition=8)
        used.update(chosen)

    assert set(used) == set(TWELVE)
    assert set(used.values()) == {6}  # 72 partitions handed out: six rounds' worth each


def test_partitions_are_taken_from_what_the_broker_named():
    named = [3, 5, 8]

    chosen = [round_partitions(named, 1, cursor, per_partition=8)[0][0] for cursor in range(6)]

    assert set(chosen) == set(named)


@pytest.mark.parametrize(
    ("partitions", "images", "per_partition"), [([], 10, 8), (TWELVE, 0, 8), (TWELVE, 10, 0)]
)
def test_unknown_partitions_an_empty_round_or_placement_off_leave_the_key_to_decide(
    partitions, images, per_partition
):
    assert round_partitions(partitions, images, cursor=5, per_partition=per_partition) == ([], 5)
    assert spread(3, []) == [None, None, None]


def test_a_rounds_images_are_dealt_round_robin_over_its_partitions():
    assert spread(7, [4, 11]) == [4, 11, 4, 11, 4, 11, 4]


def test_admitted_events_carry_the_chosen_partition_and_keep_the_image_id_as_key():
    rid = uuid.uuid4()
    req = {
        "request_id": rid,
        "tenant_id": "acme",
        "quality": 61,
        "output_format": "jpeg",
        "quality_auto": False,
        "jpeg_optimize": False,
        "jpeg_progressive": False,
    }
    images = [{"request_id": rid, "image_id": uuid.uuid4(), "input_url": f"http://x/{i}"} for i in range(5)]

    rows = list(outbox_rows(images, {rid: req}, [2, 9]))  # type: ignore[arg-type]

    assert [r[3] for r in rows] == [2, 9, 2, 9, 2]
    assert [r[1] for r in rows] == [str(img["image_id"]).encode() for img in images]
