"""The JSON bodies of the tracker API (its OpenAPI schemas), built from the read-side rows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from ..eta import MIN_FINISHED, WINDOW_SECONDS, RecentCompletions, eta_seconds
from ..progress import Progress
from .queries import ImageRow, RequestRow

RequestState = Literal["pending", "processing", "completed", "completed_with_errors", "failed", "cancelled"]
ImageState = Literal["pending", "done", "failed", "cancelled"]


class RequestStatus(BaseModel):
    request_id: UUID
    status: RequestState = Field(description="`failed` means every image failed.")
    total_images: int
    processed_images: int = Field(description="Images compressed and stored.")
    failed_images: int = Field(description="Images that could not be processed.")
    queued_images: int = Field(description="Images waiting to be admitted by the fair scheduler.")
    cancelled_images: int = Field(description="Images a cancel took out before they started.")
    progress: float = Field(ge=0, le=1, description="(processed + failed + cancelled) / total, from 0 to 1.")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = Field(description="Null until every image is finished.")
    eta_seconds: float | None = Field(
        None,
        description=(
            "Estimated seconds until every image is finished: the remaining images (queued and in"
            f" progress) over this request's own completion rate in the last {WINDOW_SECONDS:g} s."
            " The fair scheduler gives each request its share of the compressors, so that rate is"
            " the request's fair share and the estimate accounts for everybody else's work."
            f" Null until {MIN_FINISHED} images finished within that window, and once finished."
        ),
    )

    @classmethod
    def of(cls, row: RequestRow) -> RequestStatus:
        progress = Progress(row.total_images, row.processed_images, row.failed_images, row.cancelled_images)
        queued = row.total_images - row.admitted_images - row.cancelled_images
        derived = ("progress", "queued_images", "eta_seconds")
        fields = {k: getattr(row, k) for k in cls.model_fields if k not in derived}
        return cls.model_validate(
            {
                **fields,
                "queued_images": queued,
                "progress": round(progress.fraction, 4),
                "eta_seconds": eta_of(row, progress),
            }
        )


def eta_of(row: RequestRow, progress: Progress) -> float | None:
    if row.read_at is None or progress.finished:
        return None
    remaining = row.total_images - row.processed_images - row.failed_images - row.cancelled_images
    recent = RecentCompletions(row.recent_finished, row.recent_first_finished_at, row.read_at)
    return eta_seconds(remaining, recent)


class ImageError(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. `not_an_image`.")
    message: str


class ImageItem(BaseModel):
    image_id: UUID
    serial_number: int
    product_name: str
    position: int = Field(description="0-based index of the URL within its product row.")
    input_url: str
    output_url: str | None
    status: ImageState
    error: ImageError | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None
    format: str | None = Field(
        None, description="jpeg, webp or avif: the stored object's (a kept original keeps its own)."
    )
    quality: int | None = Field(None, description="Quality encoded at (chosen, for auto); null when kept.")
    ssim: float | None = Field(None, description="quality=auto: SSIM of the output against the input.")

    @classmethod
    def of(cls, row: ImageRow) -> ImageItem:
        error = ImageError(code=row.error_code, message=row.error_message or "") if row.error_code else None
        fields = {k: getattr(row, k) for k in cls.model_fields if k != "error"}
        return cls.model_validate({**fields, "error": error})


class ImagesPage(BaseModel):
    items: list[ImageItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
