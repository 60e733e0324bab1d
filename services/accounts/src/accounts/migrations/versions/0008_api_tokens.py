"""personal API tokens: created by an account's manager, scoped read or read_write, stored as a sha256

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("institution_id", sa.Uuid, sa.ForeignKey("institutions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(20), sa.CheckConstraint("scope IN ('read', 'read_write')"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    op.create_index("api_tokens_institution", "api_tokens", ["institution_id"])


def downgrade() -> None:
    op.drop_table("api_tokens")
