"""Wires the gateway: public API, portal pages, upstream clients, health and metrics."""

import contextlib
import secrets
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.template import TemplateConfig

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
from gateway.headers import security_headers
from gateway.openapi import openapi_config, swagger_asset
from gateway.portal import TEMPLATES, Portal
from gateway.security import refused, remember_client
from gateway.sessions import Sessions, current_identity
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from servicekit.runtime import build_http_app

settings = GatewaySettings()
token = settings.internal_token.get_secret_value() if settings.internal_token else None
secret_key = settings.secret_key.get_secret_value() if settings.secret_key else secrets.token_urlsafe(32)
sessions = Sessions(secret_key, identity_ttl=settings.identity_cache_seconds)
# every change sent to accounts (logout, password, roles, removal...) forgets the identities this process keeps
accounts = Upstream(
    "accounts", settings.accounts_url, settings.upstream_timeout_seconds, token, sessions.identities.clear
)


@contextlib.asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    accounts.open()
    try:
        yield
    finally:
        await accounts.close()


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
        MemberImportTemplateApi,
        OrganisersApi,
        Portal,
        swagger_asset,
    ],
    checks={"accounts": accounts.ping},
    dependencies={
        "accounts": Provide(lambda: accounts, sync_to_thread=False),
        "sessions": Provide(lambda: sessions, sync_to_thread=False),
        "identity": Provide(current_identity),
    },
    lifespan=[lifespan],
    before_request=remember_client,
    before_send=[security_headers(settings.hsts_seconds)],  # CSP, nosniff, no-store...: every answer
    metrics_route=False,  # /metrics: on settings.metrics_port only (gateway.headers.start_metrics_listener)
    exception_handlers={PermissionDeniedException: refused},
    state=State({"trusted_proxies": settings.trusted_proxies}),  # read by gateway.source.client_address
    openapi_config=openapi_config("Visiopass public API"),
    template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
    # Portal forms only: the JSON API authenticates with tokens, not cookies, so CSRF does not apply to it.
    csrf_config=CSRFConfig(
        secret=secret_key,
        cookie_secure=False,  # plain HTTP on 127.0.0.1 locally; set behind TLS in deployment
        cookie_httponly=True,
        exclude=["/api/", "/health/", "/schema"],
    ),
)
