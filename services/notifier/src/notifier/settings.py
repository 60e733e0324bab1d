import re
from datetime import time
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
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
    # the SMTP transport (notifier.mailer.SmtpPool): smtp_starttls upgrades a plain connection (usually port 587),
    # smtp_use_tls speaks TLS from the first byte (usually port 465); never both
    smtp_use_tls: bool = False
    smtp_validate_certs: bool = True
    smtp_cert_bundle: str | None = None  # CA file for a relay whose certificate no public CA signs
    smtp_pool_size: int = 4  # persistent connections to the relay, each carrying one message at a time
    smtp_idle_seconds: float = 30.0  # a connection idle longer is closed (QUIT), and reopened when needed
    smtp_local_hostname: str | None = None  # the name given in EHLO; default: this host's FQDN
    smtp_envelope_from: str | None = None  # MAIL FROM, where bounces go; default: the From address
    # DKIM (notifier.dkim_signing): mail is signed when a private key is set, unsigned otherwise. The key is an RSA
    # key in PEM, given itself (dkim_private_key, a secret) or as the path of a file holding it, never both
    dkim_selector: str | None = None
    dkim_domain: str | None = None  # the signing domain (d=); default: the domain of mail_from
    dkim_private_key: SecretStr | None = None
    dkim_private_key_file: str | None = None
    delivery_max_attempts: int = 6
    delivery_poll_seconds: float = 0.5
    # mails sent at once by a replica (match smtp_pool_size) and per second (0: no limit; a provider's quota)
    delivery_concurrency: int = Field(4, ge=1, le=200)
    delivery_rate_per_second: float = Field(0.0, ge=0)
    # how long a replica owns the deliveries it took (longer than a send can last); a killed replica's go again then
    delivery_lease_seconds: float = Field(120.0, ge=5)
    # keyring opening the sealed tokens of the links in events (contracts.secrets): "kid:<base64 32 bytes>[,...]",
    # the same keys as the producers' (ACCOUNTS_EVENT_SECRET_KEYS); never logged
    event_secret_keys: SecretStr | None = None
    # signs the reminders' unsubscribe links (notifier.preferences): a random secret (openssl rand -hex 32), kept for
    # as long as mailed links should work; another key breaks every link mailed before. Never logged
    unsubscribe_key: SecretStr | None = None
    # billing's internal API, where the PDFs attached to the billing mails are fetched at send time
    billing_url: str = "http://127.0.0.1:8102"
    billing_timeout_seconds: float = 10.0
    # enrollment's internal API, where the certificates attached to the thank-you mails are fetched at send time
    enrollment_url: str = "http://127.0.0.1:8104"
    enrollment_timeout_seconds: float = 10.0
    # what the participation-link mails tell of joining (notifier.participation_mails): a page testing the
    # camera, microphone and network; the number to join by phone (its PIN is on the join page; none: not told);
    # the support line, as the portal shows it (GATEWAY_SUPPORT_*): a phone number, the days ("mon-fri") and the
    # opening hours ("08:30-12:00,13:30-17:00", Paris time)
    equipment_test_url: str = "https://test.webrtc.org/"
    dial_in_phone: str | None = None
    support_phone: str = "01 84 80 00 00"
    support_days: str = "mon-fri"
    support_hours: str = "08:30-12:00,13:30-17:00"
    # the organisers' address(es), told of each new purchase order: "a@x.fr,b@x.fr"; none = no alert mail
    back_office_emails: Annotated[list[Email], NoDecode] = []
    # SMS through an HTTP gateway (notifier.sms documents the request); the default is the local mail catcher's
    # SMS endpoint (deploy/local/mailcatcher.py). Credentials: a bearer token, or a username and password
    # (basic auth), or none; never logged.
    sms_gateway_url: str = "http://127.0.0.1:8025/sms"
    sms_gateway_token: SecretStr | None = None
    sms_gateway_username: str | None = None
    sms_gateway_password: SecretStr | None = None
    sms_sender: str = "Visiopass"  # alphanumeric sender id (1 to 11 characters) or an E.164 number
    sms_timeout_seconds: float = 10.0
    sms_max_segments: int = 3  # a longer message is shortened at a word boundary with an ellipsis
    sms_default_region: str = "FR"  # the country of a number entered without its +<country code>
    # Outgoing webhooks (notifier.webhooks, docs/webhooks.md). The keyring sealing the endpoints' signing secrets
    # in the database, "kid:<base64 32 bytes>[,...]" like event_secret_keys (its own keys); never logged
    webhook_secret_keys: SecretStr | None = None
    # a receiver down for hours (a deploy gone wrong) still gets its events: 12 attempts over about 10 hours
    webhook_max_attempts: int = Field(12, ge=1)
    webhook_backoff_base_seconds: float = Field(60.0, gt=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    # receivers on loopback, private, link-local or reserved addresses are refused unless this is set (local runs)
    webhook_allow_private_networks: bool = False
    webhook_ca_bundle: str | None = None  # a CA file trusted besides the public ones (a test receiver's own CA)

    @field_validator("back_office_emails", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [address.strip() for address in value.split(",") if address.strip()]
        return value

    @field_validator("support_days")
    @classmethod
    def _days(cls, value: str) -> str:
        if not re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?", value.strip().lower()):
            raise ValueError('support days: "mon-fri", or one day such as "sat"')
        return value

    @field_validator("support_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        for period in value.split(","):
            opens, _, closes = period.strip().partition("-")
            try:
                if time.fromisoformat(closes) <= time.fromisoformat(opens):
                    raise ValueError(f"support hours: {period!r} closes before it opens")
            except ValueError as exc:
                raise ValueError(f'support hours: "08:30-12:00,13:30-17:00" ({exc})') from None
        return value

    def keyring(self) -> Keyring | None:
        """The keyring of `event_secret_keys`; None when unset (then no sealed token opens)."""
        if self.event_secret_keys is None or not self.event_secret_keys.get_secret_value().strip():
            return None
        return Keyring.parse(self.event_secret_keys.get_secret_value())

    def webhook_keyring(self) -> Keyring | None:
        """The keyring of `webhook_secret_keys`; None when unset (then no endpoint can be registered or signed)."""
        if self.webhook_secret_keys is None or not self.webhook_secret_keys.get_secret_value().strip():
            return None
        return Keyring.parse(self.webhook_secret_keys.get_secret_value())
