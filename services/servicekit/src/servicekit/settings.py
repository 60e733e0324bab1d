"""Settings every service shares; each service subclasses with its own env prefix (ACCOUNTS_, BILLING_, ...)."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.kafka import KafkaAccess


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/service"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    topic_partitions: int = Field(3, description="partitions of the topics this service creates")
    topic_replication_factor: int = 1
    relay_enabled: bool = True
    relay_poll_seconds: float = 2.0
    relay_batch_size: int = 500
    database_pool_size: int = Field(10, description="connections for HTTP requests and background loops")
    consumer_pool_size: int = Field(
        6, description="connections of the consumers' own pool (one per partition in flight), apart from HTTP's"
    )
    consumer_batch_size: int = Field(500, description="records fetched and applied together")
    consumer_max_attempts: int = Field(3, description="attempts before a failing event goes to the DLQ")
    consumer_backoff_seconds: float = 0.2
    internal_token: SecretStr | None = Field(
        None, description="shared secret the gateway sends to internal APIs; unset = no check (local only)"
    )
    kafka_sasl_username: str | None = Field(
        None, description="SCRAM-SHA-512 user over TLS (the service's own principal); unset = plaintext (devstack)"
    )
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle that signed the brokers' certificates")

    def kafka(self) -> KafkaAccess:
        return KafkaAccess(
            self.kafka_bootstrap_servers, self.kafka_sasl_username, self.kafka_sasl_password, self.kafka_ssl_cafile
        )
