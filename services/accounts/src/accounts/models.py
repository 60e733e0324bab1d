"""Tables of the accounts service (its own database); outbox and inbox come from servicekit."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
    func,
    text,
)

metadata = MetaData()

institutions = Table(
    "institutions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), CheckConstraint("kind IN ('school', 'company', 'other')"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("identifier", String(64)),  # UAI of a school, SIRET of a company, free text (64) otherwise; unique
    Column("city", String(100)),
    Column("postal_address", Text),
    Column("closed_at", DateTime(timezone=True)),
    Column("contact_name", String(200)),
    Column("phone", String(20)),  # E.164
    Column("billing_address", Text),
    Column("vat_number", String(20)),  # printed on invoices by billing
    # a closed institution keeps its identifier for its invoices, and may open a new account
    Index("institutions_identifier_unique", "identifier", unique=True, postgresql_where=text("closed_at IS NULL")),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200)),
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("email_verified_at", DateTime(timezone=True)),
    Column("token_version", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("is_organiser", Boolean, nullable=False, server_default=false()),
    Column("pending_email", String(320)),  # asked for, awaiting confirmation from that address
    Index("users_email_unique", text("lower(email)"), unique=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column("institution_id", Uuid, ForeignKey("institutions.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(20), CheckConstraint("role IN ('manager', 'member')"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # NULL while the person has not accepted to join (see members.py); the institution then sees only:
    Column("accepted_at", DateTime(timezone=True), server_default=func.now()),
    Column("invited_name", String(200)),  # the name it typed
    Column("invited_email", String(320)),  # the address it typed
)

action_tokens = Table(
    "action_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(30), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token, never the token
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("detail", String(320)),  # what the link acts on, e.g. the address a revert link restores
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),  # "user:<id>" or "ip:<address>"
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_started_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_version", Integer, nullable=False),  # the user's when issued; a bump ends the session
    Column("source", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),  # also in the token itself: a token is found by its id, never by hash
    Column("institution_id", Uuid, ForeignKey("institutions.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),  # acts as them
    Column("name", String(200), nullable=False),
    Column("scope", String(20), CheckConstraint("scope IN ('read', 'read_write')"), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # sha256 of the secret part, never the secret
    Column("prefix", String(16), nullable=False),  # shown to tell tokens apart: "vpat_" and the id's first 8
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),  # to the minute (api_tokens.LAST_USE_EVERY)
    Column("expires_at", DateTime(timezone=True)),  # NULL: until revoked
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Uuid, ForeignKey("users.id", ondelete="SET NULL")),
    Index("api_tokens_institution", "institution_id"),
)
