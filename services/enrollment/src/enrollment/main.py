"""Wires the enrollment service: settings, runtime (db, Kafka, outbox relay), the consumers of catalogue's sessions
and billing's answers, the waiting-list hold job, the link share job, the business metrics and the internal HTTP
routes."""

from enrollment import handlers, jobs, links_api, outcomes_api
from enrollment.api import CONTROLLERS, EXCEPTION_HANDLERS
from enrollment.service import Rules
from enrollment.settings import EnrollmentSettings
from servicekit.runtime import Service

settings = EnrollmentSettings()
rules = Rules.from_settings(settings)
service = Service(settings, migrations_package="enrollment", registry_name="enrollment")

service.consume("catalogue.session", "sessions", events=handlers.SESSION_EVENTS)(
    handlers.session_handler(service.outbox, rules)
)
service.consume(
    "billing.wallet",
    "wallet",
    events=handlers.WALLET_EVENTS,
    prepare=handlers.lock_sessions_of_answers,
    batch_handler=handlers.wallet_batch_handler(service.outbox, rules),
)(handlers.wallet_handler(service.outbox, rules))
service.run_in_background(
    lambda: jobs.run_holds_forever(service.db, service.outbox, rules, settings.waitlist_job_seconds)
)
service.run_in_background(lambda: jobs.run_shares_forever(service.db, service.outbox, settings.share_job_seconds))
service.run_in_background(lambda: jobs.run_metrics_forever(service.db))
app = service.http_app(
    CONTROLLERS + links_api.CONTROLLERS + outcomes_api.CONTROLLERS,
    title="Visiopass enrollment (internal)",
    exception_handlers=EXCEPTION_HANDLERS,
)
