"""preferences (reminders opted out), unsubscribe, bouncing addresses

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", "status IN ('pending', 'sent', 'failed', 'skipped')")
    op.create_table(
        "notification_preferences",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("reminders", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", sa.Text),
    )
    op.create_table(
        "bouncing_addresses",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False, server_default="hard"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("account_id", sa.Uuid),
        sa.CheckConstraint("address = lower(address)", name="bouncing_addresses_lower"),
        sa.CheckConstraint("kind IN ('hard')", name="bouncing_addresses_kind"),
        sa.CheckConstraint("source IN ('smtp', 'report')", name="bouncing_addresses_source"),
    )
    op.create_index("bouncing_addresses_account", "bouncing_addresses", ["account_id"])


def downgrade() -> None:
    op.drop_table("bouncing_addresses")
    op.drop_table("notification_preferences")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'skipped'")
    op.create_check_constraint("deliveries_status", "deliveries", "status IN ('pending', 'sent', 'failed')")
