"""The image.requested events the scheduler admits are what the ImageRequested model encodes."""

from __future__ import annotations

import uuid

import pytest
from ingest.admission_store import outbox_rows
from pipeline_schemas import IMAGE_REQUESTED, ImageRequested, decode, encode


def request_row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": uuid.uuid4(),
        "tenant_id": "acme",
        "quality": 61,
        "output_format": "jpeg",
        "quality_auto": False,
        "jpeg_optimize": False,
        "jpeg_progressive": False,
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    "request_changes",
    [
        {},
        {"quality": None, "quality_auto": True, "output_format": "webp"},
        {"jpeg_optimize": True, "jpeg_progressive": True, "tenant_id": "tenant-b"},
    ],
)
def test_each_admitted_event_is_byte_for_byte_the_models_encoding(request_changes):
    requests = [request_row(**request_changes), request_row()]
    urls = ["https://cdn.example.com/a.jpg", 'https://example.com/a"q".jpg', "https://bücher.example/ß.jpg"]
    images = [
        {"request_id": req["request_id"], "image_id": uuid.uuid4(), "input_url": url}
        for req in requests
        for url in urls
    ]

    rows = list(outbox_rows(images, {req["request_id"]: req for req in requests}))  # type: ignore[arg-type]

    assert len(rows) == len(images)
    event_ids = set()
    for (topic, key, value, partition), img in zip(rows, images, strict=True):
        req = next(r for r in requests if r["request_id"] == img["request_id"])
        event = decode(topic, value)
        expected = ImageRequested(
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            request_id=req["request_id"],
            tenant_id=req["tenant_id"],
            image_id=img["image_id"],
            input_url=img["input_url"],
            quality="auto" if req["quality_auto"] else req["quality"],
            format=req["output_format"],
            optimize=req["jpeg_optimize"],
            progressive=req["jpeg_progressive"],
        )
        assert (topic, key, partition) == (IMAGE_REQUESTED.name, str(img["image_id"]).encode(), None)
        assert value == encode(expected)
        event_ids.add(event.event_id)
    assert len(event_ids) == len(images)
