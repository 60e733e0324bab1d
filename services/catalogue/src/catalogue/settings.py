from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class CatalogueSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", extra="ignore")

    service_name: str = "catalogue"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/catalogue"
    http_port: int = 8103

    public_base_url: str = Field("http://127.0.0.1:8000", description="the gateway's public URL (links in the ICS)")
    planning_cache_seconds: float = Field(
        2.0, ge=0, le=300, description="how long a replica reuses a planning answer (0: never); see read_cache"
    )
    scheduler_every_seconds: float = Field(
        1.0, gt=0, le=60, description="how often the scheduler looks for due offsets"
    )

    # Conference rooms (catalogue.rooms). New sessions use `default_provider`; a provider without its settings is
    # refused when a session would use it.
    default_provider: Literal["bbb", "jitsi"] = "jitsi"
    # Keys the rooms' derived PINs and passwords: keep it stable (changing it changes every PIN).
    room_secret: SecretStr = SecretStr("")
    # The number people call to join by phone (with the room's PIN): shown on the join page, given to BigBlueButton.
    dial_in_phone: str | None = Field("+33 1 84 88 00 00", description="the phone number people call to join by phone")
    bbb_api_url: str | None = Field(None, description="e.g. https://bbb.example.org/bigbluebutton/api")
    bbb_secret: SecretStr = SecretStr("")
    bbb_checksum_algorithm: Literal["sha1", "sha256", "sha384", "sha512"] = "sha256"
    jitsi_domain: str = "meet.jit.si"
    jitsi_app_id: str = "visiopass"
    jitsi_app_secret: SecretStr = SecretStr("")
    jitsi_audience: str = "jitsi"
