"""Every service's migrations go up, down to nothing, and up again on a real PostgreSQL."""

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from servicekit.db import Database
from servicekit.migrations import alembic_config, upgrade

pytestmark = pytest.mark.infra

SERVICES_WITH_DATABASE = ["accounts", "billing", "catalogue", "enrollment", "notifier", "gateway"]
WITHOUT_EVENTS = {"gateway"}  # its database holds what its replicas share, no outbox or inbox


async def tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {name for (name,) in rows} - {"alembic_version"}


def schema_drift(package: str, connection) -> list:  # type: ignore[no-untyped-def]
    """What Alembic's autogenerate would change to make the database match the service's models."""
    metadata = importlib.import_module(f"{package}.models").metadata
    context = MigrationContext.configure(
        connection,
        opts={"include_name": lambda name, kind, _: kind != "table" or name in metadata.tables},
    )
    return compare_metadata(context, metadata)


@pytest.mark.parametrize("package", SERVICES_WITH_DATABASE)
async def test_migrations_go_up_down_and_up_again(package, fresh_database):
    db = Database(fresh_database)
    try:
        await upgrade(db, package)
        created = await tables(db)
        assert created and (package in WITHOUT_EVENTS or {"outbox", "inbox"} <= created)
        await upgrade(db, package)  # a second start finds nothing to do
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(package, sync), "base"))
        assert await tables(db) == set()
        await upgrade(db, package)
        assert await tables(db) == created
        async with db.engine.connect() as conn:
            drift = await conn.run_sync(lambda sync: schema_drift(package, sync))
        assert drift == [], f"{package}/models.py and its migrations disagree: {drift}"
    finally:
        await db.dispose()
