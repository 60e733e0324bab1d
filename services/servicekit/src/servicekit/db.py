"""Async SQLAlchemy engine and sessions, and the tables every service database has: outbox and inbox."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

OUTBOX_CHANNEL = "servicekit_outbox"

kit_metadata = MetaData()

outbox = Table(
    "outbox",
    kit_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False, comment="[[name, value], ...] of the Kafka record"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)

inbox = Table(
    "inbox",
    kit_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Frozen DDL of the tables above, applied by each service's first migration; a change to the kit tables
# comes as a new constant applied by a new migration, never as an edit of this one.
KIT_SCHEMA_V1 = (
    """CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        topic varchar(200) NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        headers jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
    )""",
    "CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL",
    """CREATE TABLE inbox (
        consumer varchar(200) NOT NULL,
        event_id uuid NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )""",
    # The relay sleeps on LISTEN; this wakes it once per committing transaction that wrote events.
    f"""CREATE FUNCTION servicekit_outbox_notify() RETURNS trigger AS $$
        BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION servicekit_outbox_notify()""",
)


def install_kit_tables(connection: Connection) -> None:
    """Create outbox and inbox; called from each service's first migration (and by servicekit's tests)."""
    for statement in KIT_SCHEMA_V1:
        connection.exec_driver_sql(statement)


def uninstall_kit_tables(connection: Connection) -> None:
    for statement in ("DROP TABLE inbox", "DROP TABLE outbox", "DROP FUNCTION servicekit_outbox_notify()"):
        connection.exec_driver_sql(statement)


def libpq_dsn(database_url: str) -> str:
    """The plain postgresql:// form of a SQLAlchemy URL, for raw asyncpg connections."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """Every engine of the services: statement parameters (password hashes, emails, names) never appear in
    an error's text, so no log line can carry them."""
    return create_async_engine(url, hide_parameters=True, **options)


class PoolUsage:
    """db_pool_connections: each watched pool's connections in use and idle, and its size, read at each scrape."""

    def __init__(self) -> None:
        self.pools: list[tuple[str, str, Database]] = []

    def watch(self, service: str, pool: str, db: "Database") -> None:
        self.pools.append((service, pool, db))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "db_pool_connections",
            "Connections of a service's database pool: in_use, idle, and its size (overflow beyond it is in_use)",
            labels=["service", "pool", "state"],
        )
        for service, name, db in self.pools:
            pool: Any = db.engine.pool
            family.add_metric([service, name, "in_use"], pool.checkedout())
            family.add_metric([service, name, "idle"], pool.checkedin())
            family.add_metric([service, name, "size"], pool.size())
        yield family


POOL_USAGE = PoolUsage()
REGISTRY.register(POOL_USAGE)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.autocommit_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose every statement is a transaction of its own (no BEGIN or COMMIT round trips): for work
        done in one statement, e.g. a database function that decides and writes."""
        async with self.autocommit_sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
