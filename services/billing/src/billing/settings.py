from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    service_name: str = "billing"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/billing"
    http_port: int = 8102
