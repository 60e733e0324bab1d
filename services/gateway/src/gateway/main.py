"""Wires the gateway: public API, portal pages, upstream clients, health and metrics."""

import contextlib
import secrets
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.template import TemplateConfig

from gateway.api import (
    AccountsApi,
    EmailChangesApi,
    InvitationsApi,
    MeApi,
    MemberImportTemplateApi,
    MembersApi,
    OrganisersApi,
    PasswordResetsApi,
    SessionsApi,
)
from gateway.portal import TEMPLATES, Portal
from gateway.sessions import Sessions, current_identity
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from servicekit.runtime import build_http_app

settings = GatewaySettings()
token = settings.internal_token.get_secret_value() if settings.internal_token else None
secret_key = settings.secret_key.get_secret_value() if settings.secret_key else secrets.token_urlsafe(32)
sessions = Sessions(secret_key)
accounts = Upstream("accounts", settings.accounts_url, settings.upstream_timeout_seconds, token)


@contextlib.asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
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
        MembersApi,
        MemberImportTemplateApi,
        OrganisersApi,
        Portal,
    ],
    checks={"accounts": accounts.ping},
    dependencies={
        "accounts": Provide(lambda: accounts, sync_to_thread=False),
        "sessions": Provide(lambda: sessions, sync_to_thread=False),
        "identity": Provide(current_identity),
    },
    lifespan=[lifespan],
    title="Visiopass public API",
    template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
    # Portal forms only: the JSON API authenticates with tokens, not cookies, so CSRF does not apply to it.
    csrf_config=CSRFConfig(
        secret=secret_key,
        cookie_secure=False,  # plain HTTP on 127.0.0.1 locally; set behind TLS in deployment
        cookie_httponly=True,
        exclude=["/api/", "/health/", "/metrics", "/schema"],
    ),
)
