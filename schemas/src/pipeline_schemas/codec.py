"""Bytes on the wire: JSON encoding of events and decoding by topic."""

from __future__ import annotations

from pydantic import BaseModel, TypeAdapter

from .base import EventBase
from .images import IMAGE_RESULT_ADAPTER, ImageRequested
from .requests import RequestCompleted
from .topics import IMAGE_COMPRESSED, IMAGE_REQUESTED, REQUEST_COMPLETED, TOPICS

__all__ = ["decode", "encode", "key_of"]

_ADAPTERS: dict[str, TypeAdapter[BaseModel]] = {
    IMAGE_REQUESTED.name: TypeAdapter(ImageRequested),
    IMAGE_COMPRESSED.name: IMAGE_RESULT_ADAPTER,  # type: ignore[dict-item]
    REQUEST_COMPLETED.name: TypeAdapter(RequestCompleted),
}


def encode(event: EventBase) -> bytes:
    """Serialise an event as UTF-8 JSON."""
    return event.model_dump_json().encode()


def decode(topic: str, raw: bytes) -> EventBase:
    """Parse the value of a message read from `topic` into its event model."""
    try:
        adapter = _ADAPTERS[topic]
    except KeyError:
        raise ValueError(f"unknown topic {topic!r}") from None
    return adapter.validate_json(raw)  # type: ignore[return-value]


def key_of(topic: str, event: EventBase) -> bytes:
    """The Kafka message key the registry prescribes for `event` on `topic`."""
    return str(getattr(event, TOPICS[topic].key_field)).encode()
