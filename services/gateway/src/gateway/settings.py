import re
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.limits import Rate
from gateway.source import Network, parse_networks

ORIGIN = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    accounts_url: str = "http://127.0.0.1:8101"
    # The delivery log (back-office, "Mon compte"); not part of the gateway's readiness: it serves without it.
    notifier_url: str = "http://127.0.0.1:8105"
    # Tokens, orders, invoices (gateway.billing); not part of the readiness either: without it the billing pages and
    # routes answer 503 and the dashboard's wallet part is "unavailable".
    billing_url: str = "http://127.0.0.1:8102"
    # Themes, sessions, the planning, rooms (gateway.catalogue); not part of the readiness either.
    catalogue_url: str = "http://127.0.0.1:8103"
    # Enrolments and waiting lists (gateway.enrolment); not part of the readiness either.
    enrollment_url: str = "http://127.0.0.1:8104"
    # How long the public planning's answers are reused (gateway.catalogue); 0: asked of the catalogue every time.
    planning_cache_seconds: float = Field(2.0, ge=0, le=300)
    # How long "Mon compte" waits for each of its parts (gateway.dashboard) before showing it unavailable.
    dashboard_timeout_seconds: float = 1.5
    internal_token: SecretStr | None = None
    # The mail provider's bounce reports (gateway.notifications: POST /hooks/mail/bounces) carry it as a bearer
    # token (openssl rand -hex 32); unset, the route does not exist (404). Never logged.
    bounce_webhook_token: SecretStr | None = None
    upstream_timeout_seconds: float = 10.0
    # The public join page (gateway.join_pages): where people test their camera and microphone beforehand.
    equipment_test_url: str = "https://test.webrtc.org/"
    # BigBlueButton's end callback is signed by the catalogue with its room secret (CATALOGUE_ROOM_SECRET): the same
    # value here lets the gateway check it (POST|GET /hooks/rooms/{id}/ended?sig=); unset, the route answers 404.
    room_callback_secret: SecretStr | None = None
    # Jitsi's (JaaS) webhook carries it as a bearer token (POST /hooks/rooms/jitsi); unset, the route answers 404.
    jitsi_webhook_token: SecretStr | None = None
    # How long an identity read from accounts is kept (gateway.identities): a change to a session or its user made
    # through another gateway process, or in accounts directly, is seen within this delay; 0 reads every time.
    identity_cache_seconds: float = 0.5
    # Strict-Transport-Security's max-age (gateway.headers), for a gateway reached over TLS; 0 sends none (local).
    hsts_seconds: int = 0
    # Origins a portal form may lead to besides the gateway's own (CSP form-action, gateway.headers): the payment
    # provider's page, e.g. "https://checkout.stripe.com" with Stripe, and the conference server a room's join form
    # redirects to (e.g. "https://meet.jit.si"); Chromium applies form-action to the redirect that follows a POST.
    # Comma-separated https origins; none by default.
    form_action_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # The Prometheus metrics are served there, not on the public port; 0 serves none.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8100
    # The portal's cookies (web session, CSRF, language) are Secure: set it when the gateway is reached over TLS.
    cookie_secure: bool = False
    # The support line shown in the portal's footer and help: a phone number, the days ("mon-fri") and the
    # opening hours ("08:30-12:00,13:30-17:00"), Europe/Paris time unless `timezone` says otherwise.
    support_phone: str = "01 84 80 00 00"
    support_days: str = "mon-fri"
    support_hours: str = "08:30-12:00,13:30-17:00"
    timezone: str = "Europe/Paris"  # dates and times shown in the portal
    secret_key: SecretStr | None = None  # signs CSRF tokens; a random one per process when unset (local only)
    # Proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDR networks, e.g.
    # "10.0.0.0/8,192.0.2.7"); none by default: the client's address is the TCP peer's (gateway.source).
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    # The gateway's own database (gateway.store): rate-limit counters and idempotency keys its replicas share.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/gateway"
    database_pool_size: int = 10
    # Rate limits per client and route class (gateway.limits, docs/api.md), each "count/seconds".
    rate_limit_login: Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)] = Rate(10, 60)
    rate_limit_mail: Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)] = Rate(5, 60)
    rate_limit_write: Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)] = Rate(120, 60)
    rate_limit_read: Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)] = Rate(1200, 60)
    # the public join pages' forms, entry codes and certificate checks, per address (a school's pupils share one)
    rate_limit_join: Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)] = Rate(60, 60)
    # How often each replica adds its read and write counts to the shared ones (the limit's overshoot across
    # replicas is what the others admit in this time).
    rate_limit_flush_seconds: float = Field(0.15, gt=0, le=5)

    @field_validator("form_action_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return (
            tuple(origin.strip() for origin in value.split(",") if origin.strip()) if isinstance(value, str) else value
        )

    @field_validator("form_action_origins")
    @classmethod
    def _https_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an https origin (https://host[:port], no path)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        return parse_networks(value.split(",")) if isinstance(value, str) else value
