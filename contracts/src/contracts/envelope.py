"""CloudEvents 1.0 envelope in Kafka binary content mode.

Headers (UTF-8 values): ce_specversion "1.0", ce_id (UUID, the idempotency key), ce_source
"/visiopass/<service>", ce_type "fr.visiopass.<service>.<EventName>.v<version>", ce_time (RFC 3339, UTC,
"Z"), ce_subject (the aggregate id), ce_dataschema "urn:visiopass:schema:<EventName>:v<version>" (the
committed file contracts/schemas/<EventName>.v<version>.json), ce_correlationid and ce_causationid (absent
when None) and content-type "application/json". Key: the aggregate id. Value: the event's JSON.
"""

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.base import ContractError, Event
from contracts.topics import EVENT_TYPES, TOPICS, topic_for

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "/visiopass/"
_CE_TYPE = re.compile(r"fr\.visiopass\.(?P<service>[a-z]+)\.(?P<name>[A-Za-z]+)\.v(?P<version>[1-9][0-9]*)")
_SERVICE = re.compile(r"[a-z][a-z0-9-]*")
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_dataschema")
_OPTIONAL = ("ce_correlationid", "ce_causationid", "content-type")


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    source: str
    type: str
    time: datetime
    subject: str
    dataschema: str
    correlation_id: str | None
    causation_id: str | None
    event: Event


def source_for(service: str) -> str:
    """The ce_source of a service: "/visiopass/<service>" (given the service name or that URI)."""
    name = service.removeprefix(SOURCE_PREFIX)
    if not _SERVICE.fullmatch(name):
        raise ContractError(f"invalid source {service!r} (expected a service name or /visiopass/<service>)")
    return SOURCE_PREFIX + name


def format_time(time: datetime) -> str:
    if time.tzinfo is None:
        raise ContractError("time must be timezone-aware")
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(
    event: Event,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    time: datetime | None = None,
) -> KafkaRecord:
    """Wraps an event into a Kafka record; `source` is the service name or "/visiopass/<service>"."""
    model = type(event)
    if EVENT_TYPES.get((model.event_name(), model.version)) is not model:
        raise ContractError(f"{model.__name__} v{model.version} is not in EVENT_TYPES")
    subject = event.aggregate_id()
    headers = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", str(event_id or uuid.uuid4())),
        ("ce_source", source_for(source)),
        ("ce_type", model.ce_type()),
        ("ce_time", format_time(time or datetime.now(UTC))),
        ("ce_subject", subject),
        ("ce_dataschema", model.dataschema()),
        ("ce_correlationid", correlation_id),
        ("ce_causationid", causation_id),
        ("content-type", CONTENT_TYPE),
    ]
    return KafkaRecord(
        topic=topic_for(model).name,
        key=subject.encode(),
        value=event.model_dump_json().encode(),
        headers=[(name, value.encode()) for name, value in headers if value],
    )


def decode(topic: str, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Envelope:
    """Parses and validates a Kafka record; a record read from `<topic>.dlq` is checked against `<topic>`.

    Raises ContractError with a one-line reason when the record breaks the contract.
    """
    attrs = _read_headers(headers)
    if attrs["ce_specversion"] != SPECVERSION:
        raise ContractError(f"unsupported ce_specversion {attrs['ce_specversion']!r} (expected 1.0)")
    if attrs.get("content-type", CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
        raise ContractError(f"unsupported content-type {attrs['content-type']!r} (expected {CONTENT_TYPE})")
    try:
        event_id = uuid.UUID(attrs["ce_id"])
    except ValueError:
        raise ContractError(f"ce_id {attrs['ce_id']!r} is not a UUID") from None
    time = _parse_time(attrs["ce_time"])
    model = _model_for(topic, attrs["ce_type"])
    event = _parse_value(model, value)
    subject = attrs["ce_subject"]
    if subject != event.aggregate_id():
        raise ContractError(f"ce_subject {subject!r} is not the event's aggregate id {event.aggregate_id()!r}")
    if key is not None and key != subject.encode():
        raise ContractError(f"key {key!r} is not the ce_subject {subject!r}")
    return Envelope(
        id=event_id,
        source=attrs["ce_source"],
        type=attrs["ce_type"],
        time=time,
        subject=subject,
        dataschema=attrs["ce_dataschema"],
        correlation_id=attrs.get("ce_correlationid"),
        causation_id=attrs.get("ce_causationid"),
        event=event,
    )


def _read_headers(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, raw in headers:
        if name not in _REQUIRED and name not in _OPTIONAL:
            continue
        if name in attrs:
            raise ContractError(f"header {name} appears twice")
        if not isinstance(raw, bytes):
            raise ContractError(f"header {name} is not bytes")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ContractError(f"header {name} is not UTF-8") from None
        if not text:
            raise ContractError(f"header {name} is empty")
        attrs[name] = text
    missing = [name for name in _REQUIRED if name not in attrs]
    if missing:
        raise ContractError(f"missing header{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return attrs


def _parse_time(text: str) -> datetime:
    try:
        time = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
    if time.tzinfo is None:
        raise ContractError(f"ce_time {text!r} has no UTC offset")
    return time.astimezone(UTC)


def _model_for(topic: str, ce_type: str) -> type[Event]:
    base_topic = topic.removesuffix(".dlq")
    if base_topic not in TOPICS:
        raise ContractError(f"unknown topic {topic!r}")
    match = _CE_TYPE.fullmatch(ce_type)
    if match is None:
        raise ContractError(f"ce_type {ce_type!r} is not fr.visiopass.<service>.<Event>.v<N>")
    model = EVENT_TYPES.get((match["name"], int(match["version"])))
    if model is None or model.service() != match["service"]:
        raise ContractError(f"unknown ce_type {ce_type!r}")
    if model.topic != base_topic:
        raise ContractError(f"ce_type {ce_type!r} does not belong to topic {base_topic!r}")
    return model


def _parse_value(model: type[Event], value: bytes | None) -> Event:
    if not value:
        raise ContractError("value is empty")
    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise ContractError("value is not JSON") from None
    if not isinstance(data, dict):
        raise ContractError("value is not a JSON object")
    if data.get("type") != model.event_name():
        raise ContractError(f"value type {data.get('type')!r} does not match ce_type's {model.event_name()!r}")
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        raise ContractError(f"value is not a valid {model.event_name()} v{model.version}: {_summary(exc)}") from None


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}" for error in exc.errors()
    )
