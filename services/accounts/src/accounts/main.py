"""Wires the accounts service: settings, runtime (db, Kafka, outbox relay), its business metrics and HTTP routes."""

from accounts import metrics, validators
from accounts.api import CONTROLLERS, EXCEPTION_HANDLERS
from accounts.settings import AccountsSettings
from servicekit.runtime import Service

settings = AccountsSettings()
validators.smtputf8_relay = settings.smtputf8
service = Service(settings, migrations_package="accounts", registry_name="accounts")
service.run_in_background(lambda: metrics.measure_forever(service.db))
app = service.http_app(CONTROLLERS, title="Visiopass accounts (internal)", exception_handlers=EXCEPTION_HANDLERS)
