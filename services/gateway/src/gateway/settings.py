from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    accounts_url: str = "http://127.0.0.1:8101"
    internal_token: SecretStr | None = None
    upstream_timeout_seconds: float = 10.0
    secret_key: SecretStr | None = None  # signs CSRF tokens; a random one per process when unset (local only)
