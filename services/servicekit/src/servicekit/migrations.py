"""Alembic migrations of a service, run at start-up under an advisory lock so replicas take turns."""

import zlib

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from servicekit.db import Database


def alembic_config(package: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["connection"] = connection
    return config


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through servicekit.migrations.upgrade(), which passes a connection")
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def upgrade(db: Database, package: str) -> None:
    lock_key = zlib.crc32(f"migrations:{package}".encode())
    async with db.engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(package, sync_conn), "heads"))


def main() -> None:
    """`python -m servicekit.migrations <service>`: the service's migrations as its start-up runs them (a deployment's
    migration step, e.g. deploy/k8s's Jobs), on the database of <SERVICE>_DATABASE_URL."""
    import asyncio
    import os
    import sys

    (package,) = sys.argv[1:] or ("",)
    url = os.environ.get(f"{package.upper()}_DATABASE_URL")
    if not package or not url:
        sys.exit("usage: <SERVICE>_DATABASE_URL=... python -m servicekit.migrations <service>")

    async def run() -> None:
        db = Database(url)
        try:
            await upgrade(db, package)
        finally:
            await db.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
