"""contacts: who asked for an enrolment or a waiting-list place, told of it by mail (the events' `notice`)

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("enrolments", "waiting_list")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"""ALTER TABLE {table}
                ADD COLUMN contact_email varchar(320),
                ADD COLUMN contact_name varchar(200),
                ADD COLUMN contact_language varchar(2) CHECK (contact_language IN ('fr', 'en'))"""
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} DROP COLUMN contact_email, DROP COLUMN contact_name, DROP COLUMN contact_language"
        )
