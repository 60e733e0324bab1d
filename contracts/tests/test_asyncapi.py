import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from contracts import TOPICS
from contracts.asyncapi import ASYNCAPI_FILE, document, render

OFFICIAL_SCHEMA = Path(__file__).parent / "asyncapi-3.0.0.schema.json"


def committed() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    return doc


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_committed_document_is_up_to_date() -> None:
    assert ASYNCAPI_FILE.read_text(encoding="utf-8") == render(document()), (
        "contracts/asyncapi.yaml is stale: run `uv run python -m contracts.asyncapi`"
    )


def test_document_is_valid_asyncapi_3() -> None:
    doc = committed()
    assert doc["asyncapi"] == "3.0.0"
    jsonschema.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8"))).validate(doc)


def test_every_topic_and_dead_letter_topic_has_a_channel() -> None:
    channels = committed()["channels"]
    for topic in TOPICS.values():
        for address in (topic.name, topic.dlq):
            assert channels[address]["address"] == address
            assert set(channels[address]["messages"]) >= {f"{m.event_name()}.v{m.version}" for m in topic.events}


def test_every_message_payload_has_properties_and_resolves() -> None:
    doc = committed()
    for name, message in doc["components"]["messages"].items():
        assert message["payload"]["properties"], name
        assert message["payload"]["properties"]["type"]["const"] == message["name"]
        for prop in message["payload"]["properties"].values():
            if "$ref" in prop:
                assert resolve(doc, prop)["properties"], f"{name}: {prop['$ref']}"
        for example in message.get("examples", []):
            jsonschema.Draft7Validator(resolve(doc, message["headers"]["allOf"][0])).validate(example["headers"])


def test_owners_send_and_consumers_receive() -> None:
    doc = committed()
    operations = doc["operations"]
    for topic in TOPICS.values():
        assert operations[f"{topic.owner}.send.{topic.name}"]["action"] == "send"
        for consumer in topic.consumers:
            operation = operations[f"{consumer}.receive.{topic.name}"]
            assert operation["action"] == "receive"
            assert resolve(doc, operation["channel"])["address"] == topic.name
            for ref in operation["messages"]:
                assert resolve(doc, resolve(doc, ref))["payload"]["properties"]
    receivers = {op.split(".receive.")[0] for op in operations if ".receive." in op}
    assert receivers == {"billing", "catalogue", "enrollment", "notifier"}
