"""enrolments: the notifier's copy of the active enrolments and whom each tells (notifier.enrolment_mails); the
reason a session was cancelled

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
        "enrolments",
        sa.Column("enrollment_id", sa.Uuid, primary_key=True),
        sa.Column("session_id", sa.Uuid, nullable=False),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("language", sa.String(2), nullable=False, server_default="fr"),
        sa.Column("status", sa.String(10), nullable=False, server_default="active"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('active', 'cancelled')", name="enrolments_status"),
    )
    op.create_index("enrolments_session", "enrolments", ["session_id"], postgresql_where=sa.text("status = 'active'"))
    op.add_column("sessions", sa.Column("cancel_reason", sa.Text))


def downgrade() -> None:
    op.drop_column("sessions", "cancel_reason")
    op.drop_table("enrolments")
