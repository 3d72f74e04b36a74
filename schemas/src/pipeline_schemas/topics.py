"""The topic registry: every topic, its key, its value type, producers and consumers.

A `Topic` is generic in the event type its messages decode to, so `IMAGE_REQUESTED.decode(raw)`
is an `ImageRequested` and `IMAGE_RESULTS.decode(raw)` an `ImageResult` for the type checker too.
How a topic is renamed or a schema changed without stopping the pipeline is written down in
schemas/README.md; a deprecated name stays registered (and created, and read) until it is retired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from .base import EventBase
from .images import IMAGE_RESULT_ADAPTER, ImageCompressed, ImageCompressionFailed, ImageRequested, ImageResult
from .requests import RequestCompleted

__all__ = [
    "IMAGE_COMPRESSED",
    "IMAGE_REQUESTED",
    "IMAGE_RESULTS",
    "REQUEST_COMPLETED",
    "SERVICES",
    "TOPICS",
    "Topic",
    "subscription_names",
]

SERVICES = frozenset({"ingest", "compressor", "tracker", "notifier"})

# Covariant: the registry holds every topic as a Topic[EventBase]; the type only appears in
# what a topic returns (decode), never in what it accepts.
EventT_co = TypeVar("EventT_co", bound=EventBase, covariant=True)


@dataclass(frozen=True)
class Topic(Generic[EventT_co]):
    """One Kafka topic and its contract; `decode` returns the topic's own event type."""

    name: str
    key_field: str
    adapter: TypeAdapter[EventT_co] = field(repr=False, compare=False)
    value_models: tuple[type[EventBase], ...]
    partitions: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    replaced_by: str | None = None
    """Set while the name is deprecated: consumers read it and `replaced_by`, nothing writes it."""

    @property
    def deprecated(self) -> bool:
        return self.replaced_by is not None

    def decode(self, raw: bytes) -> EventT_co:
        """Parse a message value read from this topic; raises pydantic.ValidationError."""
        return self.adapter.validate_json(raw)

    def key(self, event: EventBase) -> bytes:
        """The Kafka message key the registry prescribes for `event` on this topic."""
        return str(getattr(event, self.key_field)).encode()


IMAGE_REQUESTED: Topic[ImageRequested] = Topic(
    name="image.requested",
    key_field="image_id",
    adapter=TypeAdapter(ImageRequested),
    value_models=(ImageRequested,),
    partitions=12,
    producers=("ingest", "compressor"),
    consumers=("compressor",),
    description=(
        "One event per image to process, keyed by image id. Ingest puts each admission round's "
        "events into a few partitions, rotating over all of them from round to round, so the "
        "compressor group spreads one large request over every member at a few broker requests "
        "per round; the compressor re-enqueues transient failures here (by key) with a higher "
        "attempt number."
    ),
)

IMAGE_RESULTS: Topic[ImageResult] = Topic(
    name="image.results",
    key_field="request_id",
    adapter=IMAGE_RESULT_ADAPTER,
    value_models=(ImageCompressed, ImageCompressionFailed),
    partitions=6,
    producers=("compressor",),
    consumers=("tracker",),
    description=(
        "The outcome of each image, `image.compressed` or `image.failed`, keyed by request id "
        "so that one tracker worker owns all of a request's results. Replaces `image.compressed` "
        "(schemas 1.1.0)."
    ),
)

IMAGE_COMPRESSED: Topic[ImageResult] = Topic(
    name="image.compressed",
    key_field="request_id",
    adapter=IMAGE_RESULT_ADAPTER,
    value_models=(ImageCompressed, ImageCompressionFailed),
    partitions=6,
    producers=(),
    consumers=("tracker",),
    description=(
        "Deprecated since schemas 1.1.0, replaced by `image.results` (the name hid that failures "
        "travel here too). Nothing produces to it; the tracker drains it until it is retired."
    ),
    replaced_by="image.results",
)

REQUEST_COMPLETED: Topic[RequestCompleted] = Topic(
    name="request.completed",
    key_field="request_id",
    adapter=TypeAdapter(RequestCompleted),
    value_models=(RequestCompleted,),
    partitions=3,
    producers=("tracker",),
    consumers=("notifier",),
    description="A request has finished; emitted once per request (consumers dedupe on event_id).",
)

TOPICS: dict[str, Topic[EventBase]] = {
    t.name: t for t in (IMAGE_REQUESTED, IMAGE_RESULTS, REQUEST_COMPLETED, IMAGE_COMPRESSED)
}


def subscription_names(topic: Topic[Any]) -> tuple[str, ...]:
    """What a consumer of `topic` subscribes to: its name, then every deprecated name it replaces.

    Consumers subscribe through this so that retiring a deprecated name from the registry is
    the only change needed when a move is over.
    """
    previous = tuple(t.name for t in TOPICS.values() if t.replaced_by == topic.name)
    return (topic.name, *previous)
