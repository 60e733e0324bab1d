"""orders.enrol_session_ids: the sessions a purchase order names, enrolled in once its tokens are credited

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE orders ADD COLUMN enrol_session_ids uuid[] NOT NULL DEFAULT '{}'
           CHECK (cardinality(enrol_session_ids) <= 10)"""
    )


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN enrol_session_ids")
