"""Topic provisioning: every service creates the topics it needs (and their dead-letter topics) at start."""

import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if missing:
            await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor) for name in missing]
            )
            log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (none if it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        return []
    return [
        TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])
    ]
