"""Wires the catalogue service. Its business rules come with its own issue; for now it runs, migrates and reports."""

from catalogue.settings import CatalogueSettings
from servicekit.runtime import Service

settings = CatalogueSettings()
service = Service(settings, migrations_package="catalogue")
app = service.http_app([], title="Visiopass catalogue (internal)")
