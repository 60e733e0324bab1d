"""Tables of the enrollment service (its own database); outbox and inbox come from servicekit.

What the database itself enforces (migration 0002): one active enrolment (pending or confirmed) per institution
and session, and one active privatisation per session (partial unique indexes: a rejected or cancelled enrolment
never blocks a new request); one active waiting-list entry per institution and session. Capacity and "nobody else
while privatised" span several rows: they are decided under the session copy's row lock (enrollment.service)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
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
    Column("theme_title", String(200)),  # null until catalogue says it (migration 0004)
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
    Column("institution_name", String(200)),  # printed on certificates; given by the gateway (migration 0004)
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

# --- participation (migration 0004) -----------------------------------------------------------------------------

# A confirmed enrolment's way in, /join/<token>. The token is HMAC(ENROLLMENT_LINK_KEY, id): only its SHA-256 is
# stored (and looked up), yet "Mes Webvisio" can show it again. Revoking ends the row; re-issuing makes a new one.
participation_links = Table(
    "participation_links",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("enrollment_id", Uuid, ForeignKey("enrolments.id"), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Uuid),  # the manager who re-issued it; null when issued with the enrolment
    Column("mailed_at", DateTime(timezone=True)),  # when ParticipationLinkIssued was published for it
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Uuid),
    Index(
        "participation_links_one_active",
        "enrollment_id",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

# A manager's sending of the link to a staff member, now or later (ParticipationLinkShared when due).
link_shares = Table(
    "link_shares",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("enrollment_id", Uuid, ForeignKey("enrolments.id"), nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("channel", String(5), nullable=False),  # email | sms
    Column("recipient", String(320), nullable=False),  # email address, or E.164 phone number
    Column("recipient_name", String(200)),
    Column("sender_name", String(200)),
    Column("message", Text),
    Column("language", String(2), nullable=False),
    Column("send_at", DateTime(timezone=True), nullable=False),
    Column("status", String(10), nullable=False),  # scheduled | sent | cancelled
    Column("sent_at", DateTime(timezone=True)),
    Column("requested_by", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("link_shares_due", "send_at", postgresql_where=text("status = 'scheduled'")),
    Index("link_shares_enrolment", "enrollment_id", "created_at"),
)

# Each join through a link: the name typed, when; left_at when the provider reports it (or the room ended).
attendances = Table(
    "attendances",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("enrollment_id", Uuid, ForeignKey("enrolments.id"), nullable=False),
    Column("session_id", Uuid, ForeignKey("sessions.id"), nullable=False),
    Column("link_id", Uuid, ForeignKey("participation_links.id"), nullable=False),
    Column("participant_name", String(200), nullable=False),
    Column("participant_email", String(320)),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("left_at", DateTime(timezone=True)),
    Column("left_source", String(12)),  # bbb_end | jitsi | session_end
    Index("attendances_session", "session_id", "joined_at"),
    Index("attendances_enrolment", "enrollment_id", "joined_at"),
)

# One rating per institution (attendance_id null) and per attending person, once the session ended.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("session_id", Uuid, ForeignKey("sessions.id"), nullable=False),
    Column("enrollment_id", Uuid, ForeignKey("enrolments.id"), nullable=False),
    Column("attendance_id", Uuid, ForeignKey("attendances.id")),
    Column("respondent_name", String(200)),
    Column("rating", SmallInteger, nullable=False),
    Column("comment", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("rating BETWEEN 1 AND 5", name="feedback_rating_range"),
    Index("feedback_one_per_institution", "enrollment_id", unique=True, postgresql_where=text("attendance_id IS NULL")),
    Index("feedback_one_per_person", "attendance_id", unique=True, postgresql_where=text("attendance_id IS NOT NULL")),
    Index("feedback_session", "session_id"),
)

# A certificate per attending person (distinct name per enrolment), issued after the session ended.
certificates = Table(
    "certificates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code", String(19), nullable=False, unique=True),  # XXXX-XXXX-XXXX-XXXX, 80 random bits
    Column("enrollment_id", Uuid, ForeignKey("enrolments.id"), nullable=False),
    Column("session_id", Uuid, ForeignKey("sessions.id"), nullable=False),
    Column("attendance_id", Uuid, ForeignKey("attendances.id"), nullable=False, unique=True),
    Column("participant_name", String(200), nullable=False),
    Column("participant_email", String(320)),
    Column("institution_name", String(200)),
    Column("session_title", String(200), nullable=False),
    Column("theme_title", String(200)),
    Column("session_starts_at", DateTime(timezone=True), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("duration_minutes", Integer, nullable=False),  # time attended
    Column("feedback_token_hash", LargeBinary(32), nullable=False, unique=True),  # the person's /feedback/<token>
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("certificates_enrolment", "enrollment_id"),
)
