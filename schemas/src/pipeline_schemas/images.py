"""Events about single images: requested, compressed, failed."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from .base import EventBase

__all__ = [
    "ImageCompressed",
    "ImageCompressionFailed",
    "ImageRequested",
    "ImageResult",
    "IMAGE_RESULT_ADAPTER",
    "OUTPUT_FORMATS",
    "OutputFormat",
]

OutputFormat = Literal["jpeg", "webp", "avif"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("jpeg", "webp", "avif")


class ImageRequested(EventBase):
    """An image of an accepted upload is waiting to be downloaded and compressed."""

    event_type: Literal["image.requested"] = "image.requested"
    schema_version: Literal[1] = 1
    image_id: UUID = Field(description="Stable id of this image slot (product row and position).")
    input_url: str = Field(description="Absolute http(s) URL of the source image.")
    quality: Annotated[int, Field(ge=1, le=95)] | Literal["auto"] = Field(
        default=50,
        description=(
            "Quality to encode at (1-95, on the output format's own scale), or `auto`: the lowest "
            "quality whose output keeps SSIM against the input above the compressor's threshold."
        ),
    )
    format: OutputFormat = Field(default="jpeg", description="Output format.")
    optimize: bool = Field(default=False, description="JPEG only: optimal Huffman tables.")
    progressive: bool = Field(default=False, description="JPEG only: progressive scans.")
    attempt: int = Field(default=1, ge=1, description="1 on the first try; raised on each retry.")


class ImageCompressed(EventBase):
    """An image was downloaded, compressed and stored."""

    event_type: Literal["image.compressed"] = "image.compressed"
    schema_version: Literal[1] = 1
    image_id: UUID
    output_url: str = Field(description="Absolute URL where the compressed image can be fetched.")
    input_bytes: int = Field(ge=0)
    output_bytes: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    kept_original: bool = Field(
        default=False,
        description="True when the input was already smaller than a re-encode would be.",
    )
    format: OutputFormat = Field(
        default="jpeg",
        description="Format of the stored object (the original's when it was kept).",
    )
    content_type: str = Field(default="image/jpeg", description="Content-Type of the stored object.")
    quality: int | None = Field(
        default=None, ge=1, le=95, description="Quality encoded at (chosen, for `auto`); null when kept."
    )
    ssim: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        description="quality=auto only: SSIM of the output against the input, as measured.",
    )


class ImageCompressionFailed(EventBase):
    """An image could not be processed; the rest of its request carries on."""

    event_type: Literal["image.failed"] = "image.failed"
    schema_version: Literal[1] = 1
    image_id: UUID
    reason_code: str = Field(description="Machine-readable reason, e.g. `not_an_image`.")
    message: str = Field(description="Human-readable explanation.")
    attempts: int = Field(default=1, ge=1)


ImageResult = Annotated[ImageCompressed | ImageCompressionFailed, Field(discriminator="event_type")]
IMAGE_RESULT_ADAPTER: TypeAdapter[ImageCompressed | ImageCompressionFailed] = TypeAdapter(ImageResult)
