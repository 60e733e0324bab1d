from pydantic import Field, SecretStr
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

    # Participation links are HMAC(link_key, link id): only their hash is stored. Also makes the feedback links of
    # certificates. Never logged; changing it invalidates every link (re-issue them).
    link_key: SecretStr | None = None
    # the keyring sealing the tokens put in events for the notifier (NOTIFIER_EVENT_SECRET_KEYS holds the same)
    event_secret_keys: SecretStr | None = None
    # A link keeps answering this long after the session's end (the "session over" page and its feedback form).
    link_valid_days_after: int = Field(30, ge=1, le=365)
    # "Accès" opens and the join page lets people in this long before the start.
    room_opens_minutes_before: int = Field(15, ge=0, le=120)
    link_mail_days_before: int = Field(2, ge=0, le=30)  # J-2: ParticipationLinkIssued to the account
    # The public site (the gateway): certificates print {public_base_url}/certificates/verify?code=... .
    public_base_url: str = "http://127.0.0.1:8000"
    share_job_seconds: float = Field(15.0, gt=0)  # how often scheduled link sendings that are due go out
