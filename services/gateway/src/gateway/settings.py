from typing import Annotated

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.source import Network, parse_networks


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    accounts_url: str = "http://127.0.0.1:8101"
    internal_token: SecretStr | None = None
    upstream_timeout_seconds: float = 10.0
    # How long an identity read from accounts is kept (gateway.identities): a change to a session or its user made
    # through another gateway process, or in accounts directly, is seen within this delay; 0 reads every time.
    identity_cache_seconds: float = 0.5
    # Strict-Transport-Security's max-age (gateway.headers), for a gateway reached over TLS; 0 sends none (local).
    hsts_seconds: int = 0
    # The Prometheus metrics are served there, not on the public port; 0 serves none.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8100
    secret_key: SecretStr | None = None  # signs CSRF tokens; a random one per process when unset (local only)
    # Proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDR networks, e.g.
    # "10.0.0.0/8,192.0.2.7"); none by default: the client's address is the TCP peer's (gateway.source).
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        return parse_networks(value.split(",")) if isinstance(value, str) else value
