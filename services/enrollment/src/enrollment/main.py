"""Wires the enrollment service. Its business rules come with its own issue; for now it runs, migrates and reports."""

from enrollment.settings import EnrollmentSettings
from servicekit.runtime import Service

settings = EnrollmentSettings()
service = Service(settings, migrations_package="enrollment")
app = service.http_app([], title="Visiopass enrollment (internal)")
