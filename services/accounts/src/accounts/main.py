"""Wires the accounts service: settings, runtime (db, Kafka, outbox relay) and HTTP routes."""

from accounts.api import AccountsController, PasswordResetsController, ProfileController, SessionsController
from accounts.settings import AccountsSettings
from servicekit.runtime import Service

settings = AccountsSettings()
service = Service(settings, migrations_package="accounts")
app = service.http_app(
    [AccountsController, SessionsController, PasswordResetsController, ProfileController],
    title="Visiopass accounts (internal)",
)
