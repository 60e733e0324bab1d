"""How a service reaches Kafka (plain on the devstack, SASL/SCRAM over TLS in deployment) and topic provisioning:
every service creates the topics it uses (and the dead-letter topics of those it consumes) at start."""

import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from faststream.security import BaseSecurity, SASLScram512
from pydantic import SecretStr

log = logging.getLogger(__name__)

SASL_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaAccess:
    """Where the brokers are and who this client is. Without a username: PLAINTEXT (the devstack); with one:
    SASL/SCRAM-SHA-512 over TLS, the server certificate checked against `ca_file` (the system's CAs if None)."""

    bootstrap_servers: str
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.username and self.password is None:
            raise ValueError(f"Kafka user {self.username!r} has no password")

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of every aiokafka client (producer, consumer, admin)."""
        if not self.username:
            return {"bootstrap_servers": self.bootstrap_servers}
        assert self.password is not None
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password.get_secret_value(),
            "ssl_context": self._ssl_context(),
        }

    def faststream_security(self) -> BaseSecurity | None:
        if not self.username:
            return None
        assert self.password is not None
        return SASLScram512(self.username, self.password.get_secret_value(), ssl_context=self._ssl_context())


def kafka_access(kafka: str | KafkaAccess) -> KafkaAccess:
    """A bare bootstrap address (the devstack, tests) is a plaintext access."""
    return kafka if isinstance(kafka, KafkaAccess) else KafkaAccess(kafka)


async def ensure_topics(
    kafka: str | KafkaAccess, names: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    admin = AIOKafkaAdminClient(**kafka_access(kafka).client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if missing:
            response = await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor) for name in missing]
            )
            refused = [
                (name, code, (message or [None])[0])
                for name, code, *message in response.topic_errors
                if code not in (0, TopicAlreadyExistsError.errno)  # another service created it meanwhile
            ]
            if refused:
                name, code, message = refused[0]
                raise for_code(code)(f"topic {name} not created: {message}; all refused: {[r[0] for r in refused]}")
            log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def topic_partitions(kafka: str | KafkaAccess, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (none if it does not exist)."""
    admin = AIOKafkaAdminClient(**kafka_access(kafka).client_options())
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
