"""initial: outbox and inbox

Revision ID: 0001
Revises:
"""

from alembic import op
from servicekit.db import install_kit_tables, uninstall_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_kit_tables(op.get_bind())


def downgrade() -> None:
    uninstall_kit_tables(op.get_bind())
