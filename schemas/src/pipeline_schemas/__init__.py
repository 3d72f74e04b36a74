"""Event contracts shared by every service of the image pipeline, and the product CSV header."""

from .base import EventBase, new_event_id, utc_now
from .codec import decode, encode, key_of
from .csv_header import (
    CANONICAL_HEADER,
    HEADER_SPELLINGS,
    NAME_COLUMN,
    REQUIRED_COLUMNS,
    SERIAL_COLUMN,
    URLS_COLUMN,
    canonical_column,
    normalise_header,
)
from .images import ImageCompressed, ImageCompressionFailed, ImageRequested, ImageResult
from .requests import RequestCompleted, RequestStatus, completion_event_id
from .topics import (
    IMAGE_COMPRESSED,
    IMAGE_REQUESTED,
    IMAGE_RESULTS,
    REQUEST_COMPLETED,
    TOPICS,
    Topic,
    subscription_names,
)

__all__ = [
    "CANONICAL_HEADER",
    "HEADER_SPELLINGS",
    "IMAGE_COMPRESSED",
    "IMAGE_REQUESTED",
    "IMAGE_RESULTS",
    "NAME_COLUMN",
    "REQUEST_COMPLETED",
    "REQUIRED_COLUMNS",
    "SERIAL_COLUMN",
    "TOPICS",
    "URLS_COLUMN",
    "EventBase",
    "ImageCompressed",
    "ImageCompressionFailed",
    "ImageRequested",
    "ImageResult",
    "RequestCompleted",
    "RequestStatus",
    "Topic",
    "canonical_column",
    "decode",
    "completion_event_id",
    "encode",
    "key_of",
    "new_event_id",
    "normalise_header",
    "subscription_names",
    "utc_now",
]
