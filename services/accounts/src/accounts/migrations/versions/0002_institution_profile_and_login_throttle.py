"""institution identifier and profile, organisers, login throttling

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("institutions", sa.Column("identifier", sa.String(20)))
    op.create_index("institutions_identifier_unique", "institutions", ["identifier"], unique=True)
    op.add_column("institutions", sa.Column("city", sa.String(100)))
    op.add_column("institutions", sa.Column("postal_address", sa.Text))
    op.add_column("institutions", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("is_organiser", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_column("users", "is_organiser")
    for column in ("closed_at", "postal_address", "city"):
        op.drop_column("institutions", column)
    op.drop_index("institutions_identifier_unique", "institutions")
    op.drop_column("institutions", "identifier")
