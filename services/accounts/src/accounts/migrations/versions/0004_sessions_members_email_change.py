"""sessions, pending email changes, and closed institutions freeing their identifier

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("sessions_user", "sessions", ["user_id"])
    op.add_column("users", sa.Column("pending_email", sa.String(320)))
    op.drop_index("institutions_identifier_unique", "institutions")
    op.create_index(
        "institutions_identifier_unique",
        "institutions",
        ["identifier"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("institutions_identifier_unique", "institutions")
    op.create_index("institutions_identifier_unique", "institutions", ["identifier"], unique=True)
    op.drop_column("users", "pending_email")
    op.drop_index("sessions_user", "sessions")
    op.drop_table("sessions")
