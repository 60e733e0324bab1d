"""The gateway's own tables: what its replicas share (rate-limit counters, idempotency keys). Nothing here is
business data; the services own that."""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# UNLOGGED: a counter lives one window (a minute or so); losing them all in a database crash only lets clients
# start their window afresh, and not writing them to the WAL makes every request's count cheaper.
rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("bucket", String(300), primary_key=True, comment="<route class>:<client>"),
    Column("window_start", BigInteger, primary_key=True, comment="epoch seconds"),
    Column("window_end", BigInteger, nullable=False, comment="epoch seconds; the row is purged after it"),
    Column("hits", Integer, nullable=False),
    Index("rate_limit_counters_window_end", "window_end"),
    prefixes=["UNLOGGED"],
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client", String(64), primary_key=True, comment="sha256 (hex) of the client's scope, never a credential"),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False, comment="sha256 (hex) of method, path and body"),
    Column("claim", Uuid, nullable=False, comment="the request running under this key, or the one that ran"),
    Column("locked_until", DateTime(timezone=True), comment="while the first request runs; NULL once answered"),
    Column("status", Integer, comment="the stored answer's; NULL while the first request runs"),
    Column("headers", JSONB),
    Column("body", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("idempotency_keys_expires_at", "expires_at"),
)
