"""Tables of the enrollment service (its own database); outbox and inbox come from servicekit.

What the database itself enforces (migration 0002): one active enrolment (pending or confirmed) per institution
and session, and one active privatisation per session (partial unique indexes: a rejected or cancelled enrolment
never blocks a new request); one active waiting-list entry per institution and session. Capacity and "nobody else
while privatised" span several rows: they are decided under the session copy's row lock (enrollment.service)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)

metadata = MetaData()

# The local copy of catalogue's published sessions (catalogue.session events): enrolment never calls catalogue.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("theme_id", Uuid, nullable=False),
    Column("title", String(200), nullable=False),
    Column("status", String(10), nullable=False),  # published | started | ended | cancelled
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("capacity", Integer),  # null: no limit
    Column("price_tokens", Integer, nullable=False),
    Column("premium_price_tokens", Integer),  # null: cannot be privatised
    Column("access", String(10), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ACTIVE = ("pending", "confirmed")

enrolments = Table(
    "enrolments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("session_id", Uuid, ForeignKey("sessions.id"), nullable=False),
    Column("status", String(10), nullable=False),  # pending | confirmed | rejected | cancelled
    Column("privatisation", Boolean, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("expected_participants", Integer, nullable=False),
    Column("questions", Text),
    Column("requested_by", Uuid),
    # who asked, told of the enrolment by mail (the events' notice); null when the caller did not say (migration 0003)
    Column("contact_email", String(320)),
    Column("contact_name", String(200)),
    Column("contact_language", String(2)),
    Column("reason", String(40)),  # why rejected or cancelled
    Column("refund", Boolean),  # cancelled: whether billing gives the tokens back
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(
        "enrolments_one_active",
        "account_id",
        "session_id",
        unique=True,
        postgresql_where=text("status IN ('pending', 'confirmed')"),
    ),
    Index(
        "enrolments_one_privatisation",
        "session_id",
        unique=True,
        postgresql_where=text("privatisation AND status IN ('pending', 'confirmed')"),
    ),
    Index("enrolments_session", "session_id", "status"),
    Index("enrolments_account", "account_id", "created_at"),
)

WAITING = ("waiting", "offered")

waiting_list = Table(
    "waiting_list",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("position", BigInteger, Identity(always=True), nullable=False),  # first come, first offered
    Column("session_id", Uuid, ForeignKey("sessions.id"), nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("requested_by", Uuid),
    Column("contact_email", String(320)),  # who asked, told when a place is offered (as enrolments')
    Column("contact_name", String(200)),
    Column("contact_language", String(2)),
    Column("expected_participants", Integer, nullable=False),
    Column("questions", Text),
    Column("status", String(10), nullable=False),  # waiting | offered | taken | expired | left | cleared
    Column("offered_at", DateTime(timezone=True)),
    Column("hold_until", DateTime(timezone=True)),  # an offered place is kept for this entry until then
    Column("enrollment_id", Uuid),  # the enrolment made when the offer was taken
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(
        "waiting_list_one_active",
        "account_id",
        "session_id",
        unique=True,
        postgresql_where=text("status IN ('waiting', 'offered')"),
    ),
    Index("waiting_list_queue", "session_id", "position"),
    Index("waiting_list_holds", "hold_until", postgresql_where=text("status = 'offered'")),
)
