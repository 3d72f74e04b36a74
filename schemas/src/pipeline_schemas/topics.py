"""The topic registry: every topic, its key, its value models, producers and consumers."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from .images import ImageCompressed, ImageCompressionFailed, ImageRequested
from .requests import RequestCompleted

__all__ = ["IMAGE_COMPRESSED", "IMAGE_REQUESTED", "REQUEST_COMPLETED", "TOPICS", "Topic", "SERVICES"]

SERVICES = frozenset({"ingest", "compressor", "tracker", "notifier"})


@dataclass(frozen=True)
class Topic:
    """One Kafka topic and its contract."""

    name: str
    key_field: str
    value_models: tuple[type[BaseModel], ...]
    partitions: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str


IMAGE_REQUESTED = Topic(
    name="image.requested",
    key_field="image_id",
    value_models=(ImageRequested,),
    partitions=12,
    producers=("ingest", "compressor"),
    consumers=("compressor",),
    description=(
        "One event per image to process. Keyed by image id so that the compressor group "
        "spreads one large request over every member; the compressor re-enqueues "
        "transient failures here with a higher attempt number."
    ),
)

IMAGE_COMPRESSED = Topic(
    name="image.compressed",
    key_field="request_id",
    value_models=(ImageCompressed, ImageCompressionFailed),
    partitions=6,
    producers=("compressor",),
    consumers=("tracker",),
    description=(
        "The outcome of each image, success or failure, keyed by request id so that one "
        "tracker worker owns all of a request's results."
    ),
)

REQUEST_COMPLETED = Topic(
    name="request.completed",
    key_field="request_id",
    value_models=(RequestCompleted,),
    partitions=3,
    producers=("tracker",),
    consumers=("notifier",),
    description="A request has finished; emitted once per request (consumers dedupe on event_id).",
)

TOPICS: dict[str, Topic] = {t.name: t for t in (IMAGE_REQUESTED, IMAGE_COMPRESSED, REQUEST_COMPLETED)}
