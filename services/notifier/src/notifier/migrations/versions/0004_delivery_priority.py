"""deliveries: a priority (transactional mail before bulk), and the due index that the claim reads in its order

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE deliveries ADD COLUMN priority smallint NOT NULL DEFAULT 0 CHECK (priority IN (0, 1))")
    op.drop_index("deliveries_due", "deliveries")
    op.execute("CREATE INDEX deliveries_due ON deliveries (priority, next_attempt_at) WHERE status = 'pending'")


def downgrade() -> None:
    op.drop_index("deliveries_due", "deliveries")
    op.execute("CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'")
    op.execute("ALTER TABLE deliveries DROP COLUMN priority")
