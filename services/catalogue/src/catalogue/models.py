"""Tables of the catalogue service (its own database); outbox and inbox come from servicekit.

The rules the database itself enforces (migration 0002): a session ends after it starts and lasts 15 minutes to
8 hours; capacity, prices and the enrolled count stay in range; one schedule row per (session, offset), so an
offset is planned once and emitted once (the scheduler claims rows with FOR UPDATE SKIP LOCKED and marks them in
the transaction that writes the event to the outbox); one enrolment row per enrolment id, so a redelivered
Enrolled never counts twice."""

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

metadata = MetaData()

themes = Table(
    "themes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("audience", String(200), nullable=False),
    Column("prerequisites", Text, nullable=False),
    Column("image_url", String(500)),
    Column("tags", ARRAY(String(40)), nullable=False),
    Column("status", String(10), nullable=False),  # active | archived
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A series is a rule and a template; its sessions are rows of `sessions` made from them (series.py).
series = Table(
    "series",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("theme_id", Uuid, ForeignKey("themes.id"), nullable=False),
    Column("rrule", Text, nullable=False),  # RFC 5545 RRULE, no DTSTART (first_local_start is it)
    Column("first_local_start", DateTime(timezone=False), nullable=False),  # wall clock in `timezone`
    Column("timezone", String(64), nullable=False),
    Column("template", JSONB, nullable=False),  # the session fields every occurrence starts from
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("theme_id", Uuid, ForeignKey("themes.id"), nullable=False),
    Column("series_id", Uuid, ForeignKey("series.id")),
    # The occurrence's own start in the series' rule (wall clock); stays when the occurrence is moved.
    Column("occurrence_local", DateTime(timezone=False)),
    Column("detached", Boolean, nullable=False),  # edited on its own: series-wide edits leave it alone
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("animator", String(200), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("capacity", Integer),  # institutions; NULL: unlimited
    Column("price_tokens", Integer, nullable=False),
    Column("premium_price_tokens", Integer),  # NULL: cannot be privatised
    Column("access", String(10), nullable=False),  # open | code
    Column("entry_code_hash", String(200)),  # argon2; set when access = code
    Column("waiting_message", Text, nullable=False),
    Column("agenda", Text, nullable=False),
    Column("provider", String(10), nullable=False),  # bbb | jitsi
    Column("status", String(10), nullable=False),  # draft | published | cancelled | finished
    Column("enrolled_count", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),  # iCalendar SEQUENCE: bumped by each published change
    Column("cancel_reason", Text),
    Column("published_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column(
        "search",
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, title || ' ' || description || ' ' || animator)", persisted=True),
    ),
    UniqueConstraint("series_id", "occurrence_local"),
    # the planning reads sessions in start order and stops after a page: an ordered scan of this index
    Index("sessions_by_start", "starts_at", "id"),
    Index("sessions_theme", "theme_id", "starts_at"),
    Index("sessions_search", "search", postgresql_using="gin"),
)

# The scheduler's work: one row per (session, offset) while the session is published; offsets.py plans them.
schedule = Table(
    "schedule",
    metadata,
    Column("session_id", Uuid, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("offset", String(8), primary_key=True),  # J-7 | J-2 | H-1 | open | end
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("emitted_at", DateTime(timezone=True)),
    Column("skipped_at", DateTime(timezone=True)),  # due but no longer mattering when reached (catch-up rule)
    Index("schedule_pending", "due_at", postgresql_where=text("emitted_at IS NULL AND skipped_at IS NULL")),
)

# Enrolments as enrollment's events tell them: how many institutions hold a place in each session.
enrolments = Table(
    "enrolments",
    metadata,
    Column("enrollment_id", Uuid, primary_key=True),
    Column("session_id", Uuid, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("active", Boolean, nullable=False),
)

permanent_rooms = Table(
    "permanent_rooms",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("provider", String(10), nullable=False),
    Column("link_token", String(43), nullable=False, unique=True),  # the perpetual link's path part
    Column("entry_code_hash", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)
