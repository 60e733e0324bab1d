"""initial: rate-limit counters and idempotency keys

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(300), primary_key=True, comment="<route class>:<client>"),
        sa.Column("window_start", sa.BigInteger, primary_key=True, comment="epoch seconds"),
        sa.Column(
            "window_end", sa.BigInteger, nullable=False, comment="epoch seconds; the row is purged after it"
        ),
        sa.Column("hits", sa.Integer, nullable=False),
        prefixes=["UNLOGGED"],
    )
    op.create_index("rate_limit_counters_window_end", "rate_limit_counters", ["window_end"])
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "client",
            sa.String(64),
            primary_key=True,
            comment="sha256 (hex) of the client's scope, never a credential",
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, comment="sha256 (hex) of method, path and body"),
        sa.Column(
            "claim", sa.Uuid, nullable=False, comment="the request running under this key, or the one that ran"
        ),
        sa.Column(
            "locked_until",
            sa.DateTime(timezone=True),
            comment="while the first request runs; NULL once answered",
        ),
        sa.Column("status", sa.Integer, comment="the stored answer's; NULL while the first request runs"),
        sa.Column("headers", JSONB),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("rate_limit_counters")
