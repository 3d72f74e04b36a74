"""Turning a validated CSV into a request plan: ids for the request and every image, and its events."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

from pipeline_schemas import IMAGE_REQUESTED, ImageRequested, encode, utc_now

from .csv_validation import ValidatedUpload


@dataclass(frozen=True)
class UploadOptions:
    quality: int = 50
    webhook_url: str | None = None
    idempotency_key: str | None = None
    tenant_id: str = "default"


@dataclass(frozen=True)
class PlannedImage:
    image_id: UUID
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
    images: tuple[PlannedImage, ...]

    @property
    def total_images(self) -> int:
        return len(self.images)

    def outbox_rows(self) -> Iterator[tuple[str, bytes, bytes]]:
        """(topic, key, value) of one image.requested event per image."""
        now = utc_now()
        for image in self.images:
            event = ImageRequested(
                request_id=self.request_id,
                tenant_id=self.options.tenant_id,
                occurred_at=now,
                image_id=image.image_id,
                input_url=image.input_url,
                quality=self.options.quality,
            )
            yield IMAGE_REQUESTED.name, str(image.image_id).encode(), encode(event)


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_upload(upload: ValidatedUpload, data: bytes, options: UploadOptions) -> UploadPlan:
    images = tuple(
        PlannedImage(uuid4(), product.row, product.serial_number, product.name, position, url)
        for product in upload.products
        for position, url in enumerate(product.urls)
    )
    return UploadPlan(uuid4(), file_digest(data), options, len(upload.products), images)
