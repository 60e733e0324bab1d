"""the session copy, enrolments, the waiting list

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = (
    """CREATE TABLE sessions (
        id uuid PRIMARY KEY,
        theme_id uuid NOT NULL,
        title varchar(200) NOT NULL,
        status varchar(10) NOT NULL CHECK (status IN ('published', 'started', 'ended', 'cancelled')),
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        timezone varchar(64) NOT NULL,
        capacity integer CHECK (capacity >= 1),
        price_tokens integer NOT NULL CHECK (price_tokens >= 1),
        premium_price_tokens integer CHECK (premium_price_tokens >= 1),
        access varchar(10) NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE enrolments (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL,
        session_id uuid NOT NULL REFERENCES sessions (id),
        status varchar(10) NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
        privatisation boolean NOT NULL,
        tokens integer NOT NULL CHECK (tokens BETWEEN 1 AND 1000),
        expected_participants integer NOT NULL CHECK (expected_participants BETWEEN 1 AND 1000),
        questions text CHECK (char_length(questions) <= 2000),
        requested_by uuid,
        reason varchar(40),
        refund boolean,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    # one active enrolment per institution and session; a rejected or cancelled one blocks nothing
    """CREATE UNIQUE INDEX enrolments_one_active ON enrolments (account_id, session_id)
        WHERE status IN ('pending', 'confirmed')""",
    # two privatisations of one session can never both be active, whatever the code does
    """CREATE UNIQUE INDEX enrolments_one_privatisation ON enrolments (session_id)
        WHERE privatisation AND status IN ('pending', 'confirmed')""",
    "CREATE INDEX enrolments_session ON enrolments (session_id, status)",
    "CREATE INDEX enrolments_account ON enrolments (account_id, created_at)",
    """CREATE TABLE waiting_list (
        id uuid PRIMARY KEY,
        position bigint GENERATED ALWAYS AS IDENTITY,
        session_id uuid NOT NULL REFERENCES sessions (id),
        account_id uuid NOT NULL,
        requested_by uuid,
        expected_participants integer NOT NULL CHECK (expected_participants BETWEEN 1 AND 1000),
        questions text CHECK (char_length(questions) <= 2000),
        status varchar(10) NOT NULL
            CHECK (status IN ('waiting', 'offered', 'taken', 'expired', 'left', 'cleared')),
        offered_at timestamptz,
        hold_until timestamptz,
        enrollment_id uuid,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CHECK (status <> 'offered' OR hold_until IS NOT NULL)
    )""",
    """CREATE UNIQUE INDEX waiting_list_one_active ON waiting_list (account_id, session_id)
        WHERE status IN ('waiting', 'offered')""",
    "CREATE INDEX waiting_list_queue ON waiting_list (session_id, position)",
    "CREATE INDEX waiting_list_holds ON waiting_list (hold_until) WHERE status = 'offered'",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)


def downgrade() -> None:
    for table in ("waiting_list", "enrolments", "sessions"):
        op.execute(f"DROP TABLE {table}")
