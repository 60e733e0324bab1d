from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from contracts.base import Email
from contracts.secrets import Keyring
from servicekit.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    service_name: str = "notifier"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/notifier"
    http_port: int = 8105
    public_base_url: str = "http://127.0.0.1:8000"
    mail_from: str = "Visiopass <no-reply@visiopass.localhost>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    delivery_max_attempts: int = 6
    delivery_poll_seconds: float = 0.5
    # keyring opening the sealed tokens of the links in events (contracts.secrets): "kid:<base64 32 bytes>[,...]",
    # the same keys as the producers' (ACCOUNTS_EVENT_SECRET_KEYS); never logged
    event_secret_keys: SecretStr | None = None
    # billing's internal API, where the PDFs attached to the billing mails are fetched at send time
    billing_url: str = "http://127.0.0.1:8102"
    billing_timeout_seconds: float = 10.0
    # the organisers' address(es), told of each new purchase order: "a@x.fr,b@x.fr"; none = no alert mail
    back_office_emails: Annotated[list[Email], NoDecode] = []

    @field_validator("back_office_emails", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [address.strip() for address in value.split(",") if address.strip()]
        return value

    def keyring(self) -> Keyring | None:
        """The keyring of `event_secret_keys`; None when unset (then no sealed token opens)."""
        if self.event_secret_keys is None or not self.event_secret_keys.get_secret_value().strip():
            return None
        return Keyring.parse(self.event_secret_keys.get_secret_value())
