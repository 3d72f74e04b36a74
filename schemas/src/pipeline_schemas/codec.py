"""Bytes on the wire: JSON encoding of events and decoding by topic."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from .base import EventBase
from .topics import TOPICS, Topic

__all__ = ["decode", "encode", "key_of"]

EventT = TypeVar("EventT", bound=EventBase)


def encode(event: EventBase) -> bytes:
    """Serialise an event as UTF-8 JSON."""
    return event.model_dump_json().encode()


@overload
def decode(topic: Topic[EventT], raw: bytes) -> EventT: ...
@overload
def decode(topic: str, raw: bytes) -> EventBase: ...
def decode(topic: Topic[Any] | str, raw: bytes) -> EventBase:
    """Parse the value of a message read from `topic` into its event model.

    Pass the registry's `Topic` to get its own event type back (`decode(IMAGE_REQUESTED, raw)`
    is an `ImageRequested`); a topic name, as read from a message, gives an `EventBase`.
    """
    return topic_named(topic).decode(raw)


def key_of(topic: Topic[Any] | str, event: EventBase) -> bytes:
    """The Kafka message key the registry prescribes for `event` on `topic`."""
    return topic_named(topic).key(event)


def topic_named(topic: Topic[EventT] | str) -> Topic[EventT] | Topic[EventBase]:
    """The registry's entry for a name (a `Topic` is returned as it is); ValueError if unknown."""
    if isinstance(topic, Topic):
        return topic
    try:
        return TOPICS[topic]
    except KeyError:
        raise ValueError(f"unknown topic {topic!r}") from None
