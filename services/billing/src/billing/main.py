"""Wires the billing service: settings, runtime (db, Kafka, outbox relay), the payment provider, consumers,
background jobs and HTTP routes."""

from litestar.di import Provide

from billing import handlers, jobs
from billing.api import CONTROLLERS
from billing.payments import provider_from_settings
from billing.settings import BillingSettings
from servicekit.runtime import Service

settings = BillingSettings()
service = Service(settings, migrations_package="billing", registry_name="billing")
provider = provider_from_settings(settings)

service.consume("accounts.account", "accounts", events=handlers.ACCOUNT_EVENTS)(handlers.on_account_event)
service.consume(
    "enrollment.enrollment",
    "enrolments",
    events=handlers.ENROLLMENT_EVENTS,
    prepare=handlers.lock_wallets_of_enrolments,
    batch_handler=handlers.enrollment_batch_handler(service.outbox),
)(handlers.enrollment_handler(service.outbox))
service.consume(
    "catalogue.session", "sessions", events=handlers.SESSION_EVENTS, prepare=handlers.lock_wallets_of_sessions
)(handlers.session_handler(service.outbox))
service.run_in_background(lambda: jobs.run_expiry_forever(service.db, service.outbox, settings.expiry_job_seconds))
service.run_in_background(lambda: jobs.measure_forever(service.db, settings.purchase_order_alert_hours))
app = service.http_app(
    CONTROLLERS,
    title="Visiopass billing (internal)",
    dependencies={"provider": Provide(lambda: provider, sync_to_thread=False)},
)
