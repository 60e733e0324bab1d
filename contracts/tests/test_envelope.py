import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar, Literal

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import kafka as ce_kafka_v1
from pydantic import Field

from contracts import EVENT_TYPES, TOPICS, ContractError, Event, KafkaRecord, decode, encode, topic_for
from contracts.events.accounts import AccountEvent, AccountRegistered, AccountVerified
from contracts.events.billing import TokensDebited
from contracts.examples import EXAMPLES, example

EVENT_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
TIME = datetime(2025, 3, 10, 9, 0, 0, 123456, tzinfo=UTC)
REGISTERED = example(AccountRegistered)


def record(
    event: Event = REGISTERED,
    *,
    source: str = "accounts",
    time: datetime = TIME,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> KafkaRecord:
    return encode(
        event,
        source=source,
        event_id=EVENT_ID,
        time=time,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


def with_headers(rec: KafkaRecord, **changes: bytes | None) -> list[tuple[str, bytes]]:
    headers = [(name, value) for name, value in rec.headers if name not in changes]
    return headers + [(name, value) for name, value in changes.items() if value is not None]


def test_examples_cover_every_current_event() -> None:
    current = {model for topic in TOPICS.values() for model in topic.events}
    assert set(EXAMPLES) == current


@pytest.mark.parametrize("event", EXAMPLES.values(), ids=lambda e: type(e).__name__)
def test_round_trip(event: Event) -> None:
    rec = encode(event, source=event.service(), correlation_id="req-1", causation_id=str(EVENT_ID))
    envelope = decode(rec.topic, rec.key, rec.value, rec.headers)
    assert envelope.event == event
    assert type(envelope.event) is type(event)
    assert rec.topic == topic_for(type(event)).name
    assert rec.key == event.aggregate_id().encode() == envelope.subject.encode()
    assert envelope.type == f"fr.visiopass.{event.service()}.{event.event_name()}.v{event.version}"
    assert envelope.source == f"/visiopass/{event.service()}"
    assert envelope.dataschema == f"urn:visiopass:schema:{event.event_name()}:v{event.version}"
    assert (envelope.correlation_id, envelope.causation_id) == ("req-1", str(EVENT_ID))
    assert TOPICS[rec.topic].adapter.validate_json(rec.value) == event


def test_encode_headers() -> None:
    rec = record(correlation_id="corr-1")
    assert rec.topic == "accounts.account"
    assert rec.key == str(REGISTERED.account_id).encode()
    assert json.loads(rec.value) == json.loads(REGISTERED.model_dump_json())
    assert json.loads(rec.value)["type"] == "AccountRegistered"
    assert rec.headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(EVENT_ID).encode()),
        ("ce_source", b"/visiopass/accounts"),
        ("ce_type", b"fr.visiopass.accounts.AccountRegistered.v2"),
        ("ce_time", b"2025-03-10T09:00:00.123456Z"),
        ("ce_subject", str(REGISTERED.account_id).encode()),
        ("ce_dataschema", b"urn:visiopass:schema:AccountRegistered:v2"),
        ("ce_correlationid", b"corr-1"),
        ("content-type", b"application/json"),
    ]


def test_encode_defaults_and_conventions() -> None:
    rec = encode(REGISTERED, source="/visiopass/accounts")
    envelope = decode(rec.topic, rec.key, rec.value, rec.headers)
    assert envelope.id.version == 4
    assert abs(envelope.time - datetime.now(UTC)) < timedelta(minutes=1)
    assert envelope.source == "/visiopass/accounts"
    assert (envelope.correlation_id, envelope.causation_id) == (None, None)
    paris = timezone(timedelta(hours=1))
    assert decode(*_parts(record(time=TIME.astimezone(paris)))).time == TIME


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ContractError, match="timezone-aware"):
        record(time=datetime(2025, 1, 1))
    with pytest.raises(ContractError, match="invalid source"):
        record(source="Accounts Service")


def _parts(rec: KafkaRecord) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    return rec.topic, rec.key, rec.value, rec.headers


def test_decode_ignores_unknown_fields_and_headers() -> None:
    rec = record()
    value = json.dumps({**json.loads(rec.value), "added_later": 1}).encode()
    headers = [*rec.headers, ("traceparent", b"00-abc"), ("x-error", b"\xff")]
    assert decode(rec.topic, None, value, headers).event == REGISTERED


def test_decode_reads_dead_letters_of_a_topic() -> None:
    rec = record()
    assert decode("accounts.account.dlq", rec.key, rec.value, rec.headers).event == REGISTERED


GOOD = record()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ce_id": None}, "missing header ce_id"),
        ({"ce_id": None, "ce_type": None}, "missing headers ce_id, ce_type"),
        ({"ce_specversion": None}, "missing header ce_specversion"),
        ({"ce_source": None}, "missing header ce_source"),
        ({"ce_time": None}, "missing header ce_time"),
        ({"ce_subject": None}, "missing header ce_subject"),
        ({"ce_dataschema": None}, "missing header ce_dataschema"),
        ({"ce_specversion": b"0.3"}, "unsupported ce_specversion '0.3'"),
        ({"ce_id": b"42"}, "ce_id '42' is not a UUID"),
        ({"ce_id": b""}, "header ce_id is empty"),
        ({"ce_id": b"\xff"}, "header ce_id is not UTF-8"),
        ({"ce_time": b"yesterday"}, "ce_time 'yesterday' is not an RFC 3339 timestamp"),
        ({"ce_time": b"2025-03-10T09:00:00"}, "has no UTC offset"),
        ({"ce_type": b"AccountRegistered"}, "is not fr.visiopass.<service>.<Event>.v<N>"),
        ({"ce_type": b"fr.visiopass.accounts.AccountRegistered.v1\n"}, "is not fr.visiopass.<service>.<Event>.v<N>"),
        ({"ce_type": b"fr.visiopass.accounts.Nope.v1"}, "unknown ce_type 'fr.visiopass.accounts.Nope.v1'"),
        ({"ce_type": b"fr.visiopass.accounts.AccountRegistered.v9"}, "unknown ce_type"),
        ({"ce_type": b"fr.visiopass.billing.AccountRegistered.v1"}, "unknown ce_type"),
        (
            {"ce_type": b"fr.visiopass.billing.TokensDebited.v1"},
            "ce_type 'fr.visiopass.billing.TokensDebited.v1' does not belong to topic 'accounts.account'",
        ),
        ({"ce_type": b"fr.visiopass.accounts.AccountVerified.v1"}, "value type 'AccountRegistered' does not"),
        ({"ce_subject": str(uuid.uuid4()).encode()}, "is not the event's aggregate id"),
        ({"content-type": b"text/plain"}, "unsupported content-type 'text/plain'"),
    ],
)
def test_decode_rejects_bad_headers(changes: dict[str, bytes | None], reason: str) -> None:
    with pytest.raises(ContractError, match=re.escape(reason)):
        decode(GOOD.topic, GOOD.key, GOOD.value, with_headers(GOOD, **changes))


def test_decode_rejects_duplicate_header() -> None:
    with pytest.raises(ContractError, match="header ce_type appears twice"):
        decode(GOOD.topic, GOOD.key, GOOD.value, [*GOOD.headers, ("ce_type", b"x")])


def test_decode_rejects_wrong_topic_and_key() -> None:
    with pytest.raises(ContractError, match="unknown topic 'accounts'"):
        decode("accounts", GOOD.key, GOOD.value, GOOD.headers)
    with pytest.raises(ContractError, match=r"does not belong to topic 'billing\.wallet'"):
        decode("billing.wallet", GOOD.key, GOOD.value, GOOD.headers)
    with pytest.raises(ContractError, match="is not the ce_subject"):
        decode(GOOD.topic, b"other", GOOD.value, GOOD.headers)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "value is empty"),
        (b"", "value is empty"),
        (b"{not json", "value is not JSON"),
        (b"\xff\xfe", "value is not JSON"),
        (b"[1, 2]", "value is not a JSON object"),
        (b'{"account_id": "x"}', "value type None does not match ce_type's 'AccountRegistered'"),
        (
            json.dumps({**json.loads(GOOD.value), "email": "not-an-email"}).encode(),
            "value is not a valid AccountRegistered v2: email: String should match pattern",
        ),
        (
            json.dumps({k: v for k, v in json.loads(GOOD.value).items() if k != "language"}).encode(),
            "value is not a valid AccountRegistered v2: language: Field required",
        ),
        (
            json.dumps({**json.loads(GOOD.value), "verification_expires_at": "2025-03-11T09:00:00"}).encode(),
            "verification_expires_at: Input should have timezone info",
        ),
    ],
)
def test_decode_rejects_bad_values(value: bytes | None, reason: str) -> None:
    with pytest.raises(ContractError, match=re.escape(reason)) as info:
        decode(GOOD.topic, GOOD.key, value, GOOD.headers)
    assert "\n" not in str(info.value)


class AccountRegisteredV3(AccountEvent):
    """Version 3, as a breaking change would make it: the contact's name is split."""

    type: Literal["AccountRegistered"] = "AccountRegistered"
    version: ClassVar[int] = 3
    first_name: str = Field(description="First name.")
    last_name: str = Field(description="Last name.")
    email: str = Field(description="Email.")


def test_two_versions_of_an_event_coexist(monkeypatch: pytest.MonkeyPatch) -> None:
    v3 = AccountRegisteredV3(account_id=REGISTERED.account_id, first_name="Claire", last_name="Martin", email="c@x")
    with pytest.raises(ContractError, match="not in EVENT_TYPES"):
        encode(v3, source="accounts")

    monkeypatch.setitem(EVENT_TYPES, ("AccountRegistered", 3), AccountRegisteredV3)
    new = encode(v3, source="accounts")
    assert dict(new.headers)["ce_type"] == b"fr.visiopass.accounts.AccountRegistered.v3"
    assert dict(new.headers)["ce_dataschema"] == b"urn:visiopass:schema:AccountRegistered:v3"
    assert decode(new.topic, new.key, new.value, new.headers).event == v3
    old = record()
    assert type(decode(old.topic, old.key, old.value, old.headers).event) is AccountRegistered
    with pytest.raises(ContractError, match="not a valid AccountRegistered v3"):
        decode(old.topic, old.key, old.value, with_headers(old, ce_type=new.headers[3][1]))


def test_official_sdk_reads_our_records() -> None:
    rec = record(correlation_id="corr-1", causation_id="cause-1")
    message = ce_kafka.KafkaMessage(headers=dict(rec.headers), key=rec.key, value=rec.value)
    event = ce_kafka.from_binary_event(message)
    assert event.get_specversion() == "1.0"
    assert event.get_id() == str(EVENT_ID)
    assert event.get_type() == "fr.visiopass.accounts.AccountRegistered.v2"
    assert event.get_source() == "/visiopass/accounts"
    assert event.get_subject() == str(REGISTERED.account_id)
    assert event.get_time() == TIME
    assert event.get_dataschema() == "urn:visiopass:schema:AccountRegistered:v2"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("correlationid") == "corr-1"
    assert event.get_extension("causationid") == "cause-1"
    assert event.get_extension("partitionkey") == str(REGISTERED.account_id)
    assert event.get_data() == json.loads(REGISTERED.model_dump_json())


def test_legacy_sdk_api_reads_our_records() -> None:
    rec = record()
    event = ce_kafka_v1.from_binary(ce_kafka_v1.KafkaMessage(dict(rec.headers), rec.key, rec.value))
    assert (event["id"], event["type"], event["source"], event["subject"]) == (
        str(EVENT_ID),
        "fr.visiopass.accounts.AccountRegistered.v2",
        "/visiopass/accounts",
        str(REGISTERED.account_id),
    )
    assert event.get_data() == json.loads(rec.value)


def test_we_read_records_written_by_the_official_sdk() -> None:
    debited = example(TokensDebited)
    event = CloudEvent(
        {
            "id": str(EVENT_ID),
            "source": "/visiopass/billing",
            "type": "fr.visiopass.billing.TokensDebited.v1",
            "time": TIME,
            "subject": debited.aggregate_id(),
            "dataschema": "urn:visiopass:schema:TokensDebited:v1",
            "datacontenttype": "application/json",
            "correlationid": "corr-1",
        },
        json.loads(debited.model_dump_json()),
    )
    message = ce_kafka.to_binary_event(event, key_mapper=lambda e: e.get_subject())
    assert isinstance(message.key, str)
    envelope = decode("billing.wallet", message.key.encode(), message.value, list(message.headers.items()))
    assert envelope.event == debited
    assert (envelope.id, envelope.time, envelope.correlation_id) == (EVENT_ID, TIME, "corr-1")


def test_registry_is_consistent() -> None:
    assert set(TOPICS) == {
        "accounts.account",
        "billing.wallet",
        "billing.invoice",
        "catalogue.session",
        "enrollment.enrollment",
        "notifier.delivery",
    }
    for name, topic in TOPICS.items():
        assert topic.name == name
        assert name.split(".")[0] == topic.owner
        assert topic.dlq == f"{name}.dlq"
        assert topic.owner not in topic.consumers
        for model in topic.events:
            assert model.topic == name
            assert topic_for(model) is topic
            assert EVENT_TYPES[(model.event_name(), model.version)] is model
    for (name, version), model in EVENT_TYPES.items():
        assert (model.event_name(), model.version) == (name, version)


def test_topic_adapter_dispatches_on_type() -> None:
    verified = example(AccountVerified)
    adapter = TOPICS["accounts.account"].adapter
    assert adapter.validate_json(verified.model_dump_json()) == verified
    with pytest.raises(ValueError, match="TokensDebited"):
        adapter.validate_python({"type": "TokensDebited"})


def test_events_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        REGISTERED.email = "x@y"  # type: ignore[misc]
