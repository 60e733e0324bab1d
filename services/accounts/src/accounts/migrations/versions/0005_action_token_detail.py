"""what a mailed link acts on (the address a "this was not me" link restores)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("action_tokens", sa.Column("detail", sa.String(320)))


def downgrade() -> None:
    op.drop_column("action_tokens", "detail")
