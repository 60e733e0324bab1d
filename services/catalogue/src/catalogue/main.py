"""Wires the catalogue service: settings, runtime (db, Kafka, outbox relay), room providers, the enrolment
counts' consumer, the scheduler loop and the internal HTTP routes."""

from litestar.di import Provide

from catalogue import handlers, scheduler
from catalogue.api import CONTROLLERS, EXCEPTION_HANDLERS, PLANNING_CACHE, providers_from_settings
from catalogue.settings import CatalogueSettings
from servicekit.runtime import Service

settings = CatalogueSettings()
service = Service(settings, migrations_package="catalogue", registry_name="catalogue")
providers = providers_from_settings(settings)
PLANNING_CACHE.ttl = settings.planning_cache_seconds

service.consume("enrollment.enrollment", "enrolments", events=handlers.ENROLLMENT_EVENTS)(handlers.on_enrollment_event)
service.run_in_background(lambda: scheduler.run_forever(service.db, service.outbox, settings.scheduler_every_seconds))
app = service.http_app(
    CONTROLLERS,
    title="Visiopass catalogue (internal)",
    dependencies={"providers": Provide(lambda: providers, sync_to_thread=False)},
    exception_handlers=EXCEPTION_HANDLERS,
)
