from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    service_name: str = "enrollment"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/enrollment"
    http_port: int = 8104
