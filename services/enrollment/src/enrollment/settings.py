from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    service_name: str = "enrollment"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/enrollment"
    http_port: int = 8104

    # Enrolments close this long before the start: the H-1 reminder then names every institution enrolled.
    close_minutes_before: int = Field(60, ge=0, le=7 * 24 * 60)
    # An institution may cancel (and be refunded) until this long before the start.
    cancel_hours_before: int = Field(48, ge=0, le=24 * 60)
    # A place offered from the waiting list is kept this long for the institution to confirm it.
    waitlist_hold_minutes: int = Field(24 * 60, ge=1, le=30 * 24 * 60)
    waitlist_job_seconds: float = Field(30.0, gt=0)  # how often expired holds are passed on
