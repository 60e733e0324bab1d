"""A consumer's outcome counters exist from its subscription, at 0: a rate or an alert on duplicates or dead
letters sees the series before the first such event, and a replica that never met one still reports it."""

from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from servicekit.consumer import OUTCOMES, Consumer, DeadLetters
from servicekit.db import Database


async def handle(session, envelope) -> None:  # type: ignore[no-untyped-def]
    raise AssertionError("no event is consumed here")


async def test_every_outcome_is_reported_at_zero_once_subscribed() -> None:
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # never connected: nothing is consumed
    consumer = Consumer("kit-metrics", "zeroes", "kit.zeroes", handle, None, db, DeadLetters("127.0.0.1:1"))
    consumer.subscribe(KafkaBroker("127.0.0.1:1"))
    labels = {"service": "kit-metrics", "consumer": "zeroes", "topic": "kit.zeroes"}
    try:
        assert {
            outcome: REGISTRY.get_sample_value("consumer_events_total", labels | {"outcome": outcome})
            for outcome in OUTCOMES
        } == dict.fromkeys(OUTCOMES, 0.0)
    finally:
        await db.dispose()
