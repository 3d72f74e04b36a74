"""Event contracts shared by every service of the image pipeline."""

from .base import EventBase, new_event_id, utc_now
from .codec import decode, encode, key_of
from .images import ImageCompressed, ImageCompressionFailed, ImageRequested, ImageResult
from .requests import RequestCompleted, RequestStatus
from .topics import IMAGE_COMPRESSED, IMAGE_REQUESTED, REQUEST_COMPLETED, TOPICS, Topic

__all__ = [
    "IMAGE_COMPRESSED",
    "IMAGE_REQUESTED",
    "REQUEST_COMPLETED",
    "TOPICS",
    "EventBase",
    "ImageCompressed",
    "ImageCompressionFailed",
    "ImageRequested",
    "ImageResult",
    "RequestCompleted",
    "RequestStatus",
    "Topic",
    "decode",
    "encode",
    "key_of",
    "new_event_id",
    "utc_now",
]
