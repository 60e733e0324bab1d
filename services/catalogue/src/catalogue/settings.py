from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class CatalogueSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", extra="ignore")

    service_name: str = "catalogue"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/catalogue"
    http_port: int = 8103
