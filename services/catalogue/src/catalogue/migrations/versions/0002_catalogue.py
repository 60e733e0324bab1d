"""themes, series, sessions, the schedule, enrolment counts, permanent rooms

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = (
    """CREATE TABLE themes (
        id uuid PRIMARY KEY,
        title varchar(200) NOT NULL CHECK (title <> ''),
        description text NOT NULL,
        audience varchar(200) NOT NULL,
        prerequisites text NOT NULL,
        image_url varchar(500),
        tags varchar(40)[] NOT NULL DEFAULT '{}',
        status varchar(10) NOT NULL CHECK (status IN ('active', 'archived')),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE series (
        id uuid PRIMARY KEY,
        theme_id uuid NOT NULL REFERENCES themes (id),
        rrule text NOT NULL,
        first_local_start timestamp NOT NULL,
        timezone varchar(64) NOT NULL,
        template jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE sessions (
        id uuid PRIMARY KEY,
        theme_id uuid NOT NULL REFERENCES themes (id),
        series_id uuid REFERENCES series (id),
        occurrence_local timestamp,
        detached boolean NOT NULL DEFAULT false,
        title varchar(200) NOT NULL CHECK (title <> ''),
        description text NOT NULL,
        animator varchar(200) NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 15 AND 480),
        timezone varchar(64) NOT NULL,
        capacity integer CHECK (capacity BETWEEN 1 AND 100000),
        price_tokens integer NOT NULL CHECK (price_tokens BETWEEN 1 AND 1000),
        premium_price_tokens integer CHECK (premium_price_tokens BETWEEN 1 AND 1000),
        access varchar(10) NOT NULL CHECK (access IN ('open', 'code')),
        entry_code_hash varchar(200),
        waiting_message text NOT NULL,
        agenda text NOT NULL,
        provider varchar(10) NOT NULL CHECK (provider IN ('bbb', 'jitsi')),
        status varchar(10) NOT NULL CHECK (status IN ('draft', 'published', 'cancelled', 'finished')),
        enrolled_count integer NOT NULL DEFAULT 0 CHECK (enrolled_count >= 0),
        sequence integer NOT NULL DEFAULT 0,
        cancel_reason text,
        published_at timestamptz,
        cancelled_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        search tsvector GENERATED ALWAYS AS (
            to_tsvector('simple'::regconfig, title || ' ' || description || ' ' || animator)
        ) STORED,
        CHECK (ends_at > starts_at),
        CHECK ((access = 'code') = (entry_code_hash IS NOT NULL)),
        UNIQUE (series_id, occurrence_local)
    )""",
    # the planning reads sessions in start order and stops after a page: an ordered scan of this index
    "CREATE INDEX sessions_by_start ON sessions (starts_at, id)",
    "CREATE INDEX sessions_theme ON sessions (theme_id, starts_at)",
    "CREATE INDEX sessions_search ON sessions USING gin (search)",
    """CREATE TABLE schedule (
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        "offset" varchar(8) NOT NULL CHECK ("offset" IN ('J-7', 'J-2', 'H-1', 'open', 'end')),
        due_at timestamptz NOT NULL,
        emitted_at timestamptz,
        skipped_at timestamptz,
        PRIMARY KEY (session_id, "offset")
    )""",
    "CREATE INDEX schedule_pending ON schedule (due_at) WHERE emitted_at IS NULL AND skipped_at IS NULL",
    """CREATE TABLE enrolments (
        enrollment_id uuid PRIMARY KEY,
        session_id uuid NOT NULL,
        account_id uuid NOT NULL,
        active boolean NOT NULL
    )""",
    """CREATE TABLE permanent_rooms (
        id uuid PRIMARY KEY,
        name varchar(200) NOT NULL CHECK (name <> ''),
        description text NOT NULL,
        provider varchar(10) NOT NULL CHECK (provider IN ('bbb', 'jitsi')),
        link_token varchar(43) NOT NULL UNIQUE,
        entry_code_hash varchar(200),
        created_at timestamptz NOT NULL,
        closed_at timestamptz
    )""",
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)


def downgrade() -> None:
    for table in ("permanent_rooms", "enrolments", "schedule", "sessions", "series", "themes"):
        op.execute(f"DROP TABLE {table}")
