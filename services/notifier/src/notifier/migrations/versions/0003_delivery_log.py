"""the delivery log: newest first, and filtered by recipient (case-insensitive, exact or by prefix)

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("deliveries_created", "deliveries", ["created_at"])
    op.execute("CREATE INDEX deliveries_recipient ON deliveries (lower(recipient) text_pattern_ops)")


def downgrade() -> None:
    op.drop_index("deliveries_recipient", "deliveries")
    op.drop_index("deliveries_created", "deliveries")
