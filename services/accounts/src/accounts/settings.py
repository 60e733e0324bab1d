from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class AccountsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ACCOUNTS_", extra="ignore")

    service_name: str = "accounts"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/accounts"
    http_port: int = 8101
    verification_ttl_hours: int = 48
    # keyring sealing the single-use tokens of mailed links in events, for the notifier alone
    # (contracts.secrets): "kid:<base64 32 bytes>[,kid:...]", the first seals; shared with NOTIFIER_EVENT_SECRET_KEYS
    event_secret_keys: SecretStr | None = None
    # whether the notifier's mail relay carries internationalised addresses (SMTPUTF8); false: an address with
    # letters beyond ASCII before its @ is refused where it is entered (accounts.validators.smtputf8_relay)
    smtputf8: bool = True
    # throttles against mail abuse (docs/accounts.md, "Limits")
    invitations_per_day: int = 200  # per account, every invitation mail counted
    sign_ups_per_source_per_hour: int = 5
    mails_per_member_per_hour: int = 3  # invitations sent again and manager-triggered resets, per member
    anonymous_mail_request_floor_ms: int = 100  # reset and resend requests answer no faster than this
