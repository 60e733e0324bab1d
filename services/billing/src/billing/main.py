"""Wires the billing service. Its business rules come with its own issue; for now it runs, migrates and reports."""

from billing.settings import BillingSettings
from servicekit.runtime import Service

settings = BillingSettings()
service = Service(settings, migrations_package="billing")
app = service.http_app([], title="Visiopass billing (internal)")
