"""Visiopass event contracts: events, topics, the CloudEvents envelope for Kafka, JSON Schemas."""

from contracts.base import ContractError, Event, Money, VatAmounts
from contracts.envelope import Envelope, KafkaRecord, decode, encode
from contracts.topics import EVENT_TYPES, TOPICS, Topic, topic_for, topics_read_by, topics_written_by

__all__ = [
    "EVENT_TYPES",
    "TOPICS",
    "ContractError",
    "Envelope",
    "Event",
    "KafkaRecord",
    "Money",
    "Topic",
    "VatAmounts",
    "decode",
    "encode",
    "topic_for",
    "topics_read_by",
    "topics_written_by",
]
