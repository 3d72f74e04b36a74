"""The rename of `image.compressed` to `image.results`, held to the rule in schemas/README.md."""

from uuid import uuid4

import pytest
from pipeline_schemas import (
    IMAGE_COMPRESSED,
    IMAGE_REQUESTED,
    IMAGE_RESULTS,
    REQUEST_COMPLETED,
    TOPICS,
    ImageCompressed,
    ImageCompressionFailed,
    decode,
    encode,
    key_of,
    subscription_names,
)

DEPRECATED = [t for t in TOPICS.values() if t.deprecated]


def a_result() -> ImageCompressionFailed:
    return ImageCompressionFailed(request_id=uuid4(), image_id=uuid4(), reason_code="timeout", message="slow")


def test_the_results_topic_replaces_the_old_name():
    assert IMAGE_COMPRESSED.replaced_by == IMAGE_RESULTS.name == "image.results"
    assert not IMAGE_RESULTS.deprecated


@pytest.mark.parametrize("old", DEPRECATED, ids=lambda t: t.name)
def test_a_deprecated_name_keeps_its_replacements_contract(old):
    new = TOPICS[old.replaced_by]
    assert not new.deprecated, "a replacement must itself be current"
    assert (old.key_field, old.value_models, old.partitions) == (
        new.key_field,
        new.value_models,
        new.partitions,
    )


@pytest.mark.parametrize("old", DEPRECATED, ids=lambda t: t.name)
def test_nothing_produces_to_a_deprecated_name_and_its_readers_read_the_new_one(old):
    new = TOPICS[old.replaced_by]
    assert old.producers == ()
    assert set(old.consumers) <= set(new.consumers)


def test_consumers_of_results_subscribe_to_the_new_and_the_old_name():
    assert subscription_names(IMAGE_RESULTS) == ("image.results", "image.compressed")


@pytest.mark.parametrize("topic", [IMAGE_REQUESTED, REQUEST_COMPLETED], ids=lambda t: t.name)
def test_a_topic_that_replaces_nothing_is_subscribed_alone(topic):
    assert subscription_names(topic) == (topic.name,)


def test_a_message_written_under_the_old_name_decodes_like_one_under_the_new():
    event = a_result()
    raw = encode(event)
    assert decode("image.compressed", raw) == decode(IMAGE_RESULTS, raw) == event
    assert key_of("image.compressed", event) == key_of(IMAGE_RESULTS, event) == str(event.request_id).encode()


def test_the_typed_topic_decodes_both_kinds_of_result():
    ok = ImageCompressed(
        request_id=a_result().request_id,
        image_id=a_result().image_id,
        output_url="http://m/x.jpg",
        input_bytes=10,
        output_bytes=5,
        width=3,
        height=4,
    )
    assert isinstance(IMAGE_RESULTS.decode(encode(ok)), ImageCompressed)
    assert isinstance(IMAGE_RESULTS.decode(encode(a_result())), ImageCompressionFailed)


def test_an_unknown_topic_name_is_refused():
    with pytest.raises(ValueError, match="unknown topic"):
        decode("image.processed", encode(a_result()))
