"""The upload plan: image ids, COPY rows and image.requested events encoded without a model per image."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from ingest.csv_validation import parse_upload
from ingest.uploads import (
    RequestedEventTemplate,
    UploadOptions,
    ordered_uuid_strings,
    plan_upload,
    uuid4_strings,
)
from pipeline_schemas import IMAGE_REQUESTED, ImageRequested, decode, encode

REQUEST_ID = uuid.UUID("5b7f3c1e-2a4d-4e8f-9b1a-0c2d3e4f5a6b")
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/a.jpg",
        "http://127.0.0.1:8080/img/1.jpg?size=large&v=2#top",
        'https://example.com/a"quoted".jpg',
        "https://example.com/back\\slash.jpg",
        "https://bücher.example/straße.jpg",
    ],
)
def test_a_templated_event_is_byte_for_byte_what_the_pydantic_model_encodes(url):
    options = UploadOptions(quality=73, tenant_id="acme")
    event_id, image_id = str(uuid.uuid4()), str(uuid.uuid4())
    model = ImageRequested(
        event_id=uuid.UUID(event_id),
        occurred_at=WHEN,
        request_id=REQUEST_ID,
        tenant_id="acme",
        image_id=uuid.UUID(image_id),
        input_url=url,
        quality=73,
    )

    encoded = RequestedEventTemplate(REQUEST_ID, options, WHEN).encode(event_id, image_id, url)

    assert encoded == encode(model)
    assert decode(IMAGE_REQUESTED.name, encoded) == model


def test_the_plan_keeps_every_url_of_every_row_in_input_order_with_one_event_each():
    data = b"S. No.,Product Name,Input Image Urls\n1,Shirt,http://a.example/1.jpg,http://a.example/2.jpg\n"
    data += b'2,Hat,"http://a.example/3.jpg"\n'

    plan = plan_upload(parse_upload(data), data, UploadOptions(quality=40))

    rows = list(plan.image_rows())
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        (2, 1, 0, "http://a.example/1.jpg"),
        (2, 1, 1, "http://a.example/2.jpg"),
        (3, 2, 0, "http://a.example/3.jpg"),
    ]
    assert all(r[1] == plan.request_id for r in rows)
    # Each product's name once, however many images it has.
    assert list(plan.product_rows()) == [(plan.request_id, 2, 1, "Shirt"), (plan.request_id, 3, 2, "Hat")]
    events = [decode(topic, value) for topic, _, value in plan.outbox_rows()]
    assert [(str(e.image_id), e.input_url, e.quality) for e in events] == [(r[0], r[5], 40) for r in rows]
    assert [key.decode() for _, key, _ in plan.outbox_rows()] == [r[0] for r in rows]
    assert len({e.event_id for e in events}) == 3


def test_image_ids_are_version_7_uuids_that_sort_in_input_order():
    ids = ordered_uuid_strings(20_000)

    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [str(u) for u in parsed] == ids


def test_event_ids_are_distinct_version_4_uuids():
    ids = uuid4_strings(5_000)

    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {4}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
