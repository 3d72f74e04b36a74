"""The generated AsyncAPI document: it says what the registry says, and its references resolve."""

import pytest
import yaml
from pipeline_schemas import TOPICS
from pipeline_schemas._asyncapi import document, to_yaml
from pipeline_schemas._generate import DEFAULT_OUT

DOC = document()


def resolve(ref: str) -> object:
    node: object = DOC
    for part in ref.removeprefix("#/").split("/"):
        assert isinstance(node, dict)
        assert part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_the_committed_yaml_reads_back_as_the_document():
    committed = yaml.safe_load((DEFAULT_OUT / "asyncapi.yaml").read_text())
    assert committed == DOC
    assert committed["asyncapi"] == "3.0.0"


def test_every_reference_in_the_document_resolves():
    found = refs(DOC)
    assert len(found) > len(TOPICS)
    for ref in found:
        resolve(ref)


def test_one_channel_per_registered_topic_with_its_address_and_partitions():
    assert set(DOC["channels"]) == set(TOPICS)
    for name, channel in DOC["channels"].items():
        assert channel["address"] == name
        assert channel["bindings"]["kafka"]["partitions"] == TOPICS[name].partitions
        assert set(channel["messages"]) == {m.__name__ for m in TOPICS[name].value_models}


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_operations_are_the_registrys_producers_and_consumers(topic):
    ops = {
        name: op for name, op in DOC["operations"].items() if op["channel"]["$ref"] == f"#/channels/{topic}"
    }
    senders = {name.split(".")[0] for name, op in ops.items() if op["action"] == "send"}
    receivers = {name.split(".")[0] for name, op in ops.items() if op["action"] == "receive"}
    assert senders == set(TOPICS[topic].producers)
    assert receivers == set(TOPICS[topic].consumers)


def test_the_deprecated_channel_names_its_replacement():
    assert DOC["channels"]["image.compressed"]["x-replaced-by"] == "image.results"
    assert "x-replaced-by" not in DOC["channels"]["image.results"]


def test_each_message_names_its_event_type_and_the_topics_key():
    message = DOC["channels"]["image.results"]["messages"]["ImageCompressionFailed"]
    assert message["name"] == "image.failed"
    assert "`request_id`" in message["bindings"]["kafka"]["key"]["description"]
    requested = DOC["channels"]["image.requested"]["messages"]["ImageRequested"]
    assert "`image_id`" in requested["bindings"]["kafka"]["key"]["description"]


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, "two", None, True], "c": {}, "d": []},
        {"yes": "no", "on": "3.0", "needs quoting": "x: y", "$ref": "#/a", "list": [{"k": 1, "j": [2]}, {}]},
        {"nested": {"deeper": {"text": 'quote " and \\\\ backslash\\nnewline', "n": -1.5}}},
    ],
)
def test_the_yaml_writer_round_trips(value):
    assert yaml.safe_load(to_yaml(value)) == value
