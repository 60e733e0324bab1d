"""Tables of the catalogue service (its own database); outbox and inbox come from servicekit."""

from sqlalchemy import MetaData

metadata = MetaData()
