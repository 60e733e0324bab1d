"""deliveries remember their account, so that a closed account's can be erased

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
    op.add_column("deliveries", sa.Column("account_id", sa.Uuid))
    op.create_index("deliveries_account", "deliveries", ["account_id"])


def downgrade() -> None:
    op.drop_index("deliveries_account", "deliveries")
    op.drop_column("deliveries", "account_id")
