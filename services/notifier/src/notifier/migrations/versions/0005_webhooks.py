"""deliveries: a channel (email, sms, webhook); outgoing webhook endpoints

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE deliveries ADD COLUMN channel varchar(10) NOT NULL DEFAULT 'email' "
        "CONSTRAINT deliveries_channel CHECK (channel IN ('email', 'sms', 'webhook'))"
    )
    op.execute("ALTER TABLE deliveries ADD COLUMN response_status smallint")
    op.execute(
        """
        CREATE TABLE webhook_endpoints (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            url text NOT NULL,
            description text,
            events text[] NOT NULL,
            secret_sealed text NOT NULL,
            previous_secret_sealed text,
            previous_secret_expires_at timestamptz,
            status varchar(10) NOT NULL DEFAULT 'active'
                CONSTRAINT webhook_endpoints_status CHECK (status IN ('active', 'disabled')),
            disabled_reason text,
            disabled_at timestamptz,
            created_by_email varchar(320) NOT NULL,
            language varchar(2) NOT NULL DEFAULT 'fr',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id)")


def downgrade() -> None:
    op.execute("DROP TABLE webhook_endpoints")
    op.execute("ALTER TABLE deliveries DROP COLUMN response_status")
    op.execute("ALTER TABLE deliveries DROP COLUMN channel")
