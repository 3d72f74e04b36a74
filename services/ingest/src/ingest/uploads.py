"""Turning a validated CSV into a request plan: ids for the request and every image, and its events.

An upload may hold 300,000 images, so the plan keeps one small tuple per image and the events
are encoded while they are copied into the outbox: no model object per image is ever built.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple
from uuid import UUID, uuid4

from pipeline_schemas import IMAGE_REQUESTED, ImageRequested, encode, utc_now
from pipeline_schemas.images import OutputFormat

from .csv_validation import ValidatedUpload
from .scheduling import Priority


@dataclass(frozen=True)
class UploadOptions:
    quality: int | Literal["auto"] = 50
    webhook_url: str | None = None
    idempotency_key: str | None = None
    tenant_id: str = "default"
    format: OutputFormat = "jpeg"
    optimize: bool = False
    progressive: bool = False
    priority: Priority = "normal"


class PlannedImage(NamedTuple):
    """One image slot; ids are canonical UUID strings (asyncpg encodes them as uuid)."""

    image_id: str
    row: int
    serial_number: int
    product_name: str
    position: int
    input_url: str


@dataclass(frozen=True)
class UploadPlan:
    request_id: UUID
    file_sha256: str
    options: UploadOptions
    total_products: int
    images: list[PlannedImage]
    occurred_at: datetime = field(default_factory=utc_now)

    @property
    def total_images(self) -> int:
        return len(self.images)

    def product_rows(self) -> Iterator[tuple[UUID, int, int, str]]:
        """Rows for COPY into products, one per product: request_id, row_number, serial, name."""
        rid, last_row = self.request_id, None
        for image in self.images:  # a product's images are consecutive
            if image.row != last_row:
                last_row = image.row
                yield rid, image.row, image.serial_number, image.product_name

    def image_rows(self) -> Iterator[tuple[str, UUID, int, int, int, str]]:
        """Rows for COPY into images: image_id, request_id, row_number, serial, position, url.

        The product's name is stored once, in products, not in each of its images.
        """
        rid = self.request_id
        for image_id, row, serial, _name, position, url in self.images:
            yield image_id, rid, row, serial, position, url

    def outbox_rows(self) -> Iterator[tuple[str, bytes, bytes]]:
        """(topic, key, value) of one image.requested event per image, each with a fresh event id."""
        template = RequestedEventTemplate(self.request_id, self.options, self.occurred_at)
        topic = IMAGE_REQUESTED.name
        event_ids = uuid4_strings(len(self.images))
        for event_id, image in zip(event_ids, self.images, strict=True):
            yield topic, image.image_id.encode(), template.encode(event_id, image.image_id, image.input_url)


class RequestedEventTemplate:
    """Encodes ImageRequested events of one request exactly as the pydantic model would.

    The JSON of a model built with sentinel values is cut around those values once; each event
    is then the pieces joined with its own ids and URL. A sentinel-free remainder guarantees
    the field order, names and constant values are the contract's own.
    """

    _EVENT_ID = "00000000-0000-4000-8000-00000000e001"
    _IMAGE_ID = "00000000-0000-4000-8000-00000000e002"
    _URL = "http://sentinel.invalid/url"

    def __init__(self, request_id: UUID, options: UploadOptions, occurred_at: datetime) -> None:
        sample = ImageRequested(
            event_id=UUID(self._EVENT_ID),
            request_id=request_id,
            tenant_id=options.tenant_id,
            occurred_at=occurred_at,
            image_id=UUID(self._IMAGE_ID),
            input_url=self._URL,
            quality=options.quality,
            format=options.format,
            optimize=options.optimize,
            progressive=options.progressive,
        )
        text = encode(sample).decode()
        head, rest = split_once(text, f'"{self._EVENT_ID}"')
        middle, rest = split_once(rest, f'"{self._IMAGE_ID}"')
        between, tail = split_once(rest, json.dumps(self._URL))
        self._parts = (head + '"', '"' + middle + '"', '"' + between, tail)

    def encode(self, event_id: str, image_id: str, url: str) -> bytes:
        head, middle, between, tail = self._parts
        # Validated URLs are printable: only a quote or a backslash needs JSON escaping.
        quoted_url = json.dumps(url, ensure_ascii=False) if '"' in url or "\\" in url else f'"{url}"'
        return f"{head}{event_id}{middle}{image_id}{between}{quoted_url}{tail}".encode()


def split_once(text: str, separator: str) -> tuple[str, str]:
    before, found, after = text.partition(separator)
    if not found or separator in after:
        raise ValueError(f"event template: expected exactly one {separator!r}")
    return before, after


def uuid4_strings(count: int) -> list[str]:
    """`count` random version-4 UUIDs as strings, about four times faster than str(uuid4())."""
    digits = os.urandom(16 * count).hex()
    out: list[str] = []
    append = out.append
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return out


def ordered_uuid_strings(count: int) -> list[str]:
    """`count` UUIDv7 strings (RFC 9562, method 1) that sort in the order given.

    48-bit Unix milliseconds, then a 26-bit sequence number (12 bits in rand_a, 14 after the
    variant), then 48 random bits. Image ids in input order append to the right edge of the
    primary-key index instead of landing at random pages: COPY of 300,000 images is much faster.
    """
    if count >= 1 << 26:
        return uuid4_strings(count)
    millis = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    prefix = f"{millis[:8]}-{millis[8:]}-7"
    tails = os.urandom(6 * count).hex()
    return [
        f"{prefix}{seq >> 14:03x}-{0x8000 | seq & 0x3FFF:04x}-{tails[12 * seq : 12 * seq + 12]}"
        for seq in range(count)
    ]


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_upload(upload: ValidatedUpload, data: bytes, options: UploadOptions) -> UploadPlan:
    image_ids = iter(ordered_uuid_strings(upload.total_images))
    images = [
        PlannedImage(next(image_ids), product.row, product.serial_number, product.name, position, url)
        for product in upload.products
        for position, url in enumerate(product.urls)
    ]
    return UploadPlan(uuid4(), file_digest(data), options, len(upload.products), images)
