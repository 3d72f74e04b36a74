"""The event contracts: examples decode, encoding round-trips, generated files are current."""

import json
from pathlib import Path
from uuid import uuid4

import pytest
from pipeline_schemas import (
    TOPICS,
    ImageCompressed,
    ImageCompressionFailed,
    ImageRequested,
    RequestCompleted,
    decode,
    encode,
    key_of,
    utc_now,
)
from pipeline_schemas._generate import DEFAULT_OUT, render_all, stale_files, write
from pipeline_schemas.topics import SERVICES
from pydantic import ValidationError

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/v*/*.json"))


def sample_events():
    rid = uuid4()
    return [
        ("image.requested", ImageRequested(request_id=rid, image_id=uuid4(), input_url="http://a/b.jpg")),
        (
            "image.results",
            ImageCompressed(
                request_id=rid,
                image_id=uuid4(),
                output_url="http://m/x.jpg",
                input_bytes=10,
                output_bytes=5,
                width=3,
                height=4,
            ),
        ),
        (
            "image.results",
            ImageCompressionFailed(request_id=rid, image_id=uuid4(), reason_code="timeout", message="slow"),
        ),
        (
            "request.completed",
            RequestCompleted(
                request_id=rid,
                status="completed",
                total_images=1,
                processed_images=1,
                failed_images=0,
                completed_at=utc_now(),
                output_csv_url="http://t/o.csv",
            ),
        ),
    ]


def test_every_topic_has_at_least_one_example():
    topics_with_examples = {p.parts[-3] for p in EXAMPLE_FILES}
    assert topics_with_examples == set(TOPICS)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: "/".join(p.parts[-3:]))
def test_example_payload_decodes_with_its_topic_codec(path):
    topic = path.parts[-3]
    event = decode(topic, path.read_bytes())
    assert type(event) in TOPICS[topic].value_models
    assert event.schema_version == int(path.parts[-2].removeprefix("v"))


@pytest.mark.parametrize(("topic", "event"), sample_events(), ids=lambda v: getattr(v, "event_type", v))
def test_encoded_event_decodes_to_an_equal_event(topic, event):
    assert decode(topic, encode(event)) == event


def test_unknown_fields_are_ignored_by_readers():
    topic, event = sample_events()[0]
    payload = json.loads(encode(event)) | {"added_in_a_later_minor_release": 1}
    assert decode(topic, json.dumps(payload).encode()) == event


def test_an_event_of_the_wrong_type_for_the_topic_is_rejected():
    _, completed = sample_events()[3]
    with pytest.raises(ValidationError):
        decode("image.requested", encode(completed))


def test_result_topic_decodes_both_success_and_failure():
    _, ok = sample_events()[1]
    _, failed = sample_events()[2]
    assert isinstance(decode("image.results", encode(ok)), ImageCompressed)
    assert isinstance(decode("image.results", encode(failed)), ImageCompressionFailed)


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_topic_key_field_exists_on_every_value_model(topic):
    for model in TOPICS[topic].value_models:
        assert TOPICS[topic].key_field in model.model_fields


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_topic_producers_and_consumers_are_real_services(topic):
    assert set(TOPICS[topic].producers) <= SERVICES
    assert set(TOPICS[topic].consumers) <= SERVICES


def test_results_and_completions_are_keyed_by_request_id():
    _, ok = sample_events()[1]
    assert key_of("image.results", ok) == str(ok.request_id).encode()
    assert TOPICS["request.completed"].key_field == "request_id"


def test_image_requested_has_enough_partitions_for_the_compressor_group_to_scale():
    assert TOPICS["image.requested"].partitions >= 12


def test_committed_json_schema_files_match_the_models():
    assert stale_files(DEFAULT_OUT) == [], "run `make schemas` to regenerate"


def test_generated_files_change_when_a_model_changes(tmp_path):
    write(tmp_path)
    assert stale_files(tmp_path) == []
    victim = next(iter(render_all()))
    (tmp_path / victim).write_text("{}\n")
    assert stale_files(tmp_path) == [victim]


def test_a_schema_file_no_model_produces_is_stale_and_writing_removes_it(tmp_path):
    write(tmp_path)
    leftover = tmp_path / "jsonschema" / "image.retired.ImageCompressed.v1.json"
    leftover.write_text("{}\n")
    assert stale_files(tmp_path) == ["jsonschema/image.retired.ImageCompressed.v1.json"]
    write(tmp_path)
    assert not leftover.exists()


def test_the_asyncapi_document_is_among_the_generated_files():
    assert "asyncapi.yaml" in render_all()
    assert (DEFAULT_OUT / "asyncapi.yaml").is_file()
