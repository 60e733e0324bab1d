"""institution contact person, phone, billing address and VAT number

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("contact_name", "phone", "billing_address", "vat_number")


def upgrade() -> None:
    op.add_column("institutions", sa.Column("contact_name", sa.String(200)))
    op.add_column("institutions", sa.Column("phone", sa.String(20)))
    op.add_column("institutions", sa.Column("billing_address", sa.Text))
    op.add_column("institutions", sa.Column("vat_number", sa.String(20)))


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_column("institutions", column)
