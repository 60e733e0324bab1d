"""Wires the accounts service: settings, runtime (db, Kafka, outbox relay) and HTTP routes."""

from accounts import validators
from accounts.api import CONTROLLERS, EXCEPTION_HANDLERS
from accounts.settings import AccountsSettings
from servicekit.runtime import Service

settings = AccountsSettings()
validators.smtputf8_relay = settings.smtputf8
service = Service(settings, migrations_package="accounts")
app = service.http_app(CONTROLLERS, title="Visiopass accounts (internal)", exception_handlers=EXCEPTION_HANDLERS)
