"""joining an institution needs the person's acceptance: a membership is pending until accepted, and while
pending its institution sees only the name and address it typed

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Inserts that do not say otherwise (a sign-up's manager) are accepted at once; existing ones were.
    op.add_column("memberships", sa.Column("accepted_at", sa.DateTime(timezone=True), server_default=sa.func.now()))
    op.execute("UPDATE memberships SET accepted_at = created_at")
    op.add_column("memberships", sa.Column("invited_name", sa.String(200)))
    op.add_column("memberships", sa.Column("invited_email", sa.String(320)))


def downgrade() -> None:
    op.execute("DELETE FROM memberships WHERE accepted_at IS NULL")
    for column in ("invited_email", "invited_name", "accepted_at"):
        op.drop_column("memberships", column)
