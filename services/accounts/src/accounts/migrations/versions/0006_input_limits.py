"""an institution's free-text identifier (kind "other") holds the 64 characters the API accepts (it held 20)

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
    op.alter_column("institutions", "identifier", type_=sa.String(64), existing_type=sa.String(20))


def downgrade() -> None:
    op.alter_column("institutions", "identifier", type_=sa.String(20), existing_type=sa.String(64))
