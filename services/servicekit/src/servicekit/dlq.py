"""Inspect and replay dead letters: `python -m servicekit.dlq list|replay <topic> [--event-id ID ...]`.

A dead letter is the original record (key, value, headers) plus `dlq_*` headers saying why it failed.
Replaying republishes the original record to its topic; consumers' inboxes make a second replay harmless.
Where the brokers ask for SASL/SCRAM over TLS: KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE (an
operator's principal allowed to read `<topic>.dlq` and write `<topic>`).
"""

import argparse
import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from servicekit.kafka import KafkaAccess, kafka_access, topic_partitions


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), None)

    @property
    def event_id(self) -> str | None:
        return self.header("ce_id")

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq_")]

    def summary(self) -> dict[str, Any]:
        return {
            "dlq_offset": f"{self.partition}:{self.offset}",
            "event_id": self.event_id,
            "type": self.header("ce_type"),
            "reason": self.header("dlq_reason"),
            "error": self.header("dlq_error"),
            "consumer": self.header("dlq_consumer"),
            "source": f"{self.header('dlq_topic')}[{self.header('dlq_partition')}]@{self.header('dlq_offset')}",
        }


async def read_dead_letters(kafka: str | KafkaAccess, topic: str) -> list[DeadLetter]:
    """Every record currently in `<topic>.dlq`, oldest first per partition."""
    consumer = AIOKafkaConsumer(**kafka_access(kafka).client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, f"{topic}.dlq")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                letters += [
                    DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                ]
        return letters
    finally:
        await consumer.stop()


async def replay(kafka: str | KafkaAccess, topic: str, event_ids: set[str] | None = None) -> int:
    """Republish dead letters of `topic` (all, or those whose ce_id is in `event_ids`) to `topic`."""
    letters = [
        letter for letter in await read_dead_letters(kafka, topic) if event_ids is None or letter.event_id in event_ids
    ]
    producer = AIOKafkaProducer(**kafka_access(kafka).client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(topic, value=letter.value, key=letter.key, headers=letter.original_headers)
    finally:
        await producer.stop()
    return len(letters)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m servicekit.dlq", description=__doc__)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("topic", help="the original topic, e.g. accounts.account (its DLQ is <topic>.dlq)")
    parser.add_argument("--event-id", action="append", help="only this event id (repeatable); default all")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    args = parser.parse_args()
    password = os.environ.get("KAFKA_SASL_PASSWORD")
    kafka = KafkaAccess(
        args.bootstrap,
        os.environ.get("KAFKA_SASL_USERNAME"),
        SecretStr(password) if password else None,
        os.environ.get("KAFKA_SSL_CAFILE"),
    )
    if args.command == "list":
        for letter in asyncio.run(read_dead_letters(kafka, args.topic)):
            print(json.dumps(letter.summary(), ensure_ascii=False))
    else:
        count = asyncio.run(replay(kafka, args.topic, set(args.event_id) if args.event_id else None))
        print(f"replayed {count} dead letter(s) to {args.topic}")


if __name__ == "__main__":
    main()
