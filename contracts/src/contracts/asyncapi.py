"""AsyncAPI 3.0 document of every Visiopass topic, message, producer and consumer.

`python -m contracts.asyncapi` rewrites contracts/asyncapi.yaml.
"""

import json
import uuid
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import yaml

from contracts.base import Event
from contracts.envelope import CONTENT_TYPE, SOURCE_PREFIX, SPECVERSION, encode
from contracts.examples import EXAMPLES, NOW
from contracts.topics import EVENT_TYPES, TOPICS, Topic

ASYNCAPI_FILE = Path(__file__).resolve().parents[2] / "asyncapi.yaml"
KAFKA_BINDING_VERSION = "0.5.0"
HEADERS_SCHEMA = "CloudEventHeaders"

Document = dict[str, Any]

DESCRIPTION = f"""\
Events exchanged by the Visiopass services over Apache Kafka. One topic per aggregate, keyed by the
aggregate id; each topic carries a tagged union of events (discriminator `type`).

Every record is a CloudEvents {SPECVERSION} event in Kafka binary content mode: the `ce_*` headers hold the
attributes (UTF-8), the value holds the event's JSON. `ce_id` is the consumers' idempotency key,
`ce_source` is `{SOURCE_PREFIX}<service>`, `ce_type` is `fr.visiopass.<service>.<Event>.v<version>`,
`ce_subject` equals the key, `ce_dataschema` is `urn:visiopass:schema:<Event>:v<version>` (the committed
file `contracts/schemas/<Event>.v<version>.json`). A record that cannot be handled goes to `<topic>.dlq`.
"""

HEADERS: Document = {
    "type": "object",
    "description": f"CloudEvents {SPECVERSION} attributes in Kafka binary content mode (UTF-8 header values).",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_dataschema"],
    "properties": {
        "ce_specversion": {"type": "string", "const": SPECVERSION, "description": "CloudEvents version."},
        "ce_id": {"type": "string", "format": "uuid", "description": "Event id: the idempotency key."},
        "ce_source": {
            "type": "string",
            "pattern": f"^{SOURCE_PREFIX}[a-z][a-z0-9-]*$",
            "description": f"Producing service, as {SOURCE_PREFIX}<service>.",
        },
        "ce_type": {
            "type": "string",
            "pattern": r"^fr\.visiopass\.[a-z]+\.[A-Za-z]+\.v[1-9][0-9]*$",
            "description": "Event type with its version: fr.visiopass.<service>.<Event>.v<version>.",
        },
        "ce_time": {"type": "string", "format": "date-time", "description": "When it happened (RFC 3339, UTC)."},
        "ce_subject": {"type": "string", "description": "Aggregate id; equal to the Kafka key."},
        "ce_dataschema": {
            "type": "string",
            "format": "uri",
            "description": "urn:visiopass:schema:<Event>:v<version>, the committed JSON Schema of the value.",
        },
        "ce_correlationid": {"type": "string", "description": "Id shared by everything one request caused."},
        "ce_causationid": {"type": "string", "description": "ce_id of the event that caused this one."},
        "content-type": {"type": "string", "const": CONTENT_TYPE, "description": "Media type of the value."},
    },
}


def message_id(model: type[Event]) -> str:
    return f"{model.event_name()}.v{model.version}"


def _summary(model: type[Event]) -> str:
    return (model.__doc__ or model.event_name()).strip().splitlines()[0]


def _payload(model: type[Event], shared: Document) -> Document:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        if shared.setdefault(name, definition) != definition:
            raise ValueError(f"two different nested models are named {name}")
    return schema


def _example(event: Event) -> Document:
    record = encode(
        event,
        source=event.service(),
        event_id=uuid.UUID("f0000000-0000-4000-8000-000000000001"),
        time=NOW,
        correlation_id="f0000000-0000-4000-8000-000000000002",
    )
    return {
        "name": "example",
        "headers": {name: value.decode() for name, value in record.headers},
        "payload": json.loads(record.value),
    }


def _message(model: type[Event], shared: Document) -> Document:
    message: Document = {
        "name": model.event_name(),
        "title": f"{model.event_name()} v{model.version}",
        "summary": _summary(model),
        "contentType": CONTENT_TYPE,
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"},
                {
                    "type": "object",
                    "properties": {
                        "ce_type": {"const": model.ce_type()},
                        "ce_dataschema": {"const": model.dataschema()},
                    },
                },
            ]
        },
        "payload": _payload(model, shared),
        "correlationId": {"$ref": "#/components/correlationIds/correlationId"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "Aggregate id (ce_subject)."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if model in EXAMPLES:
        message["examples"] = [_example(EXAMPLES[model])]
    return message


def _messages_of(topic: Topic) -> list[type[Event]]:
    return [model for model in EVENT_TYPES.values() if model.topic == topic.name]


def _channel(address: str, description: str, models: list[type[Event]]) -> Document:
    return {
        "address": address,
        "description": description,
        "messages": {message_id(model): {"$ref": f"#/components/messages/{message_id(model)}"} for model in models},
        "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _operation(service: str, action: str, channel: str, models: list[type[Event]]) -> tuple[str, Document]:
    verb = "publishes to" if action == "send" else "consumes"
    return f"{service}.{action}.{channel}", {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": f"{service} {verb} {channel}.",
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message_id(model)}"} for model in models],
    }


def document() -> Document:
    schemas: Document = {HEADERS_SCHEMA: HEADERS}
    messages: Document = {}
    channels: Document = {}
    operations: Document = {}
    for topic in TOPICS.values():
        models = _messages_of(topic)
        for model in models:
            messages[message_id(model)] = _message(model, schemas)
        channels[topic.name] = _channel(topic.name, topic.description, models)
        channels[topic.dlq] = _channel(
            topic.dlq,
            f"Dead letters of {topic.name}: records its consumers could not parse or handle, "
            "with the error in their headers.",
            models,
        )
        operations.update([_operation(topic.owner, "send", topic.name, models)])
        for consumer in topic.consumers:
            operations.update([_operation(consumer, "receive", topic.name, models)])
            operations.update([_operation(consumer, "send", topic.dlq, models)])
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Visiopass events",
            "version": package_version("visiopass-contracts"),
            "description": DESCRIPTION,
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The single-node Kafka started by the local launchers.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "correlationIds": {
                "correlationId": {
                    "description": "Id shared by every event one request caused.",
                    "location": "$message.header#/ce_correlationid",
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def render(doc: Document) -> str:
    text: str = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return text


def write(path: Path = ASYNCAPI_FILE) -> bool:
    """Rewrites the committed document; returns whether it changed."""
    text = render(document())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main() -> None:
    print(f"{ASYNCAPI_FILE} {'rewritten' if write() else 'already up to date'}")


if __name__ == "__main__":
    main()
