"""Wires the gateway: public API, portal pages, upstream clients, health and metrics."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.template import TemplateConfig

from gateway import i18n
from gateway.account_pages import AccountPages, ClosedPage
from gateway.api import (
    AccountsApi,
    EmailChangesApi,
    InvitationsApi,
    JoinRequestsApi,
    MeApi,
    MemberImportTemplateApi,
    MembersApi,
    MyInvitationsApi,
    OrganisersApi,
    PasswordResetsApi,
    SessionsApi,
)
from gateway.api_tokens import ApiTokensApi
from gateway.assets import static_files, static_url
from gateway.back_office_billing import BackOfficeBillingPages
from gateway.back_office_billing_api import BackOfficeBillingApi
from gateway.back_office_catalogue_api import BackOfficeCatalogueApi
from gateway.back_office_pages import BackOfficePages
from gateway.back_office_rooms import BackOfficeRoomPages, RoomPages
from gateway.back_office_series import BackOfficeSeriesPages
from gateway.back_office_sessions import BackOfficeSessionPages
from gateway.back_office_statistics import BackOfficeStatisticsPages
from gateway.back_office_themes import BackOfficeThemePages
from gateway.backoffice import BackOfficeApi
from gateway.billing import PaymentsApi, PriceListApi, WalletApi
from gateway.billing_pages import BillingPages, SandboxPaymentPages
from gateway.catalogue import PLANNING_ANSWERS, PlanningApi
from gateway.dashboard import DashboardApi, Sources
from gateway.enrolment import BackOfficeEnrolmentApi, EnrolmentApi
from gateway.enrolment_pages import EnrolmentPages
from gateway.headers import security_headers
from gateway.idempotency import Idempotency
from gateway.join_pages import CONTROLLERS as JOIN_PAGES
from gateway.join_pages import PublicLinks
from gateway.limits import RateLimiter, limited_identity
from gateway.member_pages import MemberPages
from gateway.messages import mail_kind
from gateway.navigation import ACCOUNT_TABS, BACK_OFFICE, Navigation
from gateway.notifications import BounceHook, NotificationPages, UnsubscribePages
from gateway.openapi import openapi_config, swagger_asset, without_bodies_on_204
from gateway.participation import BackOfficeParticipationApi, ParticipationApi
from gateway.participation_pages import ParticipationPages
from gateway.planning_pages import PlanningPages
from gateway.portal import TEMPLATES, Portal
from gateway.security import refused, remember_client
from gateway.sessions import Sessions, current_identity
from gateway.settings import GatewaySettings
from gateway.store import Store
from gateway.support import Support
from gateway.upstream import Upstream
from gateway.web import LoginRequired, login_redirect, person, visitor
from gateway.webhook_pages import WebhookPages
from gateway.webhooks import WebhookEventTypesApi, WebhooksApi
from servicekit.runtime import build_http_app

settings = GatewaySettings()
token = settings.internal_token.get_secret_value() if settings.internal_token else None
secret_key = settings.secret_key.get_secret_value() if settings.secret_key else secrets.token_urlsafe(32)
sessions = Sessions(secret_key, identity_ttl=settings.identity_cache_seconds)
# every change sent to accounts (logout, password, roles, removal...) forgets the identities this process keeps
accounts = Upstream(
    "accounts", settings.accounts_url, settings.upstream_timeout_seconds, token, sessions.identities.clear
)
# what the gateway's replicas share: rate-limit counters and idempotency keys (docs/api.md)
store = Store(settings.database_url, settings.database_pool_size)
limiter = RateLimiter(
    {
        "login": settings.rate_limit_login,
        "mail": settings.rate_limit_mail,
        "write": settings.rate_limit_write,
        "read": settings.rate_limit_read,
        "join": settings.rate_limit_join,
    },
    store,
)
idempotency = Idempotency(store)
# not in the readiness checks: the gateway serves without the notifier (its parts show "unavailable")
notifier = Upstream("notifier", settings.notifier_url, settings.upstream_timeout_seconds, token)
billing = Upstream("billing", settings.billing_url, settings.upstream_timeout_seconds, token)  # not in readiness either
catalogue = Upstream("catalogue", settings.catalogue_url, settings.upstream_timeout_seconds, token)  # nor this one
enrollment = Upstream("enrollment", settings.enrollment_url, settings.upstream_timeout_seconds, token)  # nor this
PLANNING_ANSWERS.ttl = settings.planning_cache_seconds
dashboard_sources = Sources(
    {"accounts": accounts, "notifier": notifier, "billing": billing}, settings.dashboard_timeout_seconds
)

support = Support.parse(settings.support_phone, settings.support_days, settings.support_hours)
i18n.timezone = ZoneInfo(settings.timezone)


def portal_templates(engine: JinjaTemplateEngine) -> None:
    """What every page can use: translations and the locale's formatters, the navigation, support, assets."""
    environment = engine.engine
    i18n.install(environment)
    # the services this gateway reaches: their pages appear in the menus
    upstreams = {"accounts", "notifier", "billing", "catalogue", "enrollment"}
    environment.globals.update(
        navigation=NavigationView(Navigation(frozenset(upstreams))),
        support=support,
        static_url=static_url,
        mail_kind=mail_kind,
    )


class NavigationView:
    """The navigation as templates use it: `navigation.main(...)`, `navigation.links(navigation.account_tabs)`."""

    account_tabs = ACCOUNT_TABS
    back_office = BACK_OFFICE

    def __init__(self, navigation: Navigation) -> None:
        self.main = navigation.main
        self.links = navigation.links


@contextlib.asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    accounts.open()
    jobs = [(settings.rate_limit_flush_seconds, limiter.flush), (30.0, limiter.purge), (60.0, idempotency.purge)]
    shared = asyncio.create_task(store.run(jobs), name="gateway store")
    notifier.open()
    billing.open()
    catalogue.open()
    enrollment.open()
    try:
        yield
    finally:
        shared.cancel()
        await asyncio.gather(shared, return_exceptions=True)
        await store.dispose()
        await accounts.close()
        await notifier.close()
        await billing.close()
        await catalogue.close()
        await enrollment.close()


app = build_http_app(
    settings.service_name,
    [
        AccountsApi,
        PasswordResetsApi,
        SessionsApi,
        MeApi,
        EmailChangesApi,
        InvitationsApi,
        JoinRequestsApi,
        MyInvitationsApi,
        MembersApi,
        ApiTokensApi,
        WebhooksApi,
        WebhookEventTypesApi,
        MemberImportTemplateApi,
        OrganisersApi,
        DashboardApi,
        BackOfficeApi,
        BackOfficeBillingApi,
        BackOfficeCatalogueApi,
        PriceListApi,
        WalletApi,
        PaymentsApi,
        PlanningApi,
        EnrolmentApi,
        BackOfficeEnrolmentApi,
        ParticipationApi,
        BackOfficeParticipationApi,
        Portal,
        AccountPages,
        MemberPages,
        NotificationPages,
        UnsubscribePages,
        BounceHook,
        WebhookPages,
        ClosedPage,
        BackOfficePages,
        BackOfficeBillingPages,
        BackOfficeThemePages,
        BackOfficeSessionPages,
        BackOfficeSeriesPages,
        BackOfficeRoomPages,
        RoomPages,
        BillingPages,
        SandboxPaymentPages,
        PlanningPages,
        EnrolmentPages,
        ParticipationPages,
        BackOfficeStatisticsPages,
        *JOIN_PAGES,
        swagger_asset,
        static_files(),
    ],
    checks={"accounts": accounts.ping, "store": store.ready},
    dependencies={
        "accounts": Provide(lambda: accounts, sync_to_thread=False),
        "notifier": Provide(lambda: notifier, sync_to_thread=False),
        "billing": Provide(lambda: billing, sync_to_thread=False),
        "catalogue": Provide(lambda: catalogue, sync_to_thread=False),
        "enrollment": Provide(lambda: enrollment, sync_to_thread=False),
        "dashboard_sources": Provide(lambda: dashboard_sources, sync_to_thread=False),
        "sessions": Provide(lambda: sessions, sync_to_thread=False),
        "authenticated": Provide(current_identity),
        "identity": Provide(limited_identity),  # counted in the route's rate-limit class (gateway.limits)
        "limiter": Provide(lambda: limiter, sync_to_thread=False),
        "visitor": Provide(visitor),
        "person": Provide(person),
    },
    lifespan=[lifespan],
    before_request=remember_client,
    middleware=[limiter.middleware, idempotency.middleware],  # per-address limits, then Idempotency-Key
    before_send=[
        security_headers(settings.hsts_seconds, settings.form_action_origins)
    ],  # CSP, nosniff, no-store...: every answer
    metrics_route=False,  # /metrics: on settings.metrics_port only (gateway.headers.start_metrics_listener)
    exception_handlers={PermissionDeniedException: refused, LoginRequired: login_redirect},
    # trusted_proxies: read by gateway.source.client_address; cookie_secure: by the portal's cookies
    state=State(
        {
            "trusted_proxies": settings.trusted_proxies,
            "cookie_secure": settings.cookie_secure,
            # gateway.join_pages: the entry-code cookie's key, the equipment test, the rooms' hooks' secrets
            "public_links": PublicLinks.of(settings, secret_key),
            # gateway.notifications: the mail provider's bounce reports; none, and the route answers 404
            "bounce_webhook_token": settings.bounce_webhook_token.get_secret_value()
            if settings.bounce_webhook_token
            else None,
        }
    ),
    openapi_config=openapi_config("Visiopass public API"),
    template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=portal_templates),
    # Portal forms only: the JSON API authenticates with tokens, not cookies, so CSRF does not apply to it.
    csrf_config=CSRFConfig(
        secret=secret_key,
        cookie_secure=settings.cookie_secure,  # plain HTTP on 127.0.0.1 locally; set behind TLS in deployment
        cookie_httponly=True,
        exclude=["/api/", "/health/", "/schema"],
    ),
)
without_bodies_on_204(app.openapi_schema)  # the document is built once; this corrects it before it is served
