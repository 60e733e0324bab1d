"""Tables of the notifier: the deliveries it owes and their log."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False),  # the event that asked for this mail
    Column("template", String(100), nullable=False),
    Column("language", String(2), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("context", JSONB),  # template variables; erased once sent, since they may hold a link's secret
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("account_id", Uuid),  # whose mail it is, to erase when the account closes
    # 0: transactional (a reset link, a receipt) goes first; 1: bulk (a fan-out of reminders) waits behind it
    Column("priority", SmallInteger, nullable=False, server_default="0"),
    # email, sms, or webhook (then `recipient` is the endpoint's id and `template` the event type)
    Column("channel", String(10), nullable=False, server_default="email"),
    Column("response_status", SmallInteger),  # the HTTP status a webhook receiver answered, last attempt
    UniqueConstraint("event_id", "template", "recipient", name="deliveries_once_per_event"),
    # skipped: a reminder to an account that opted out of reminders (notifier.preferences)
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="deliveries_status"),
    CheckConstraint("priority IN (0, 1)", name="deliveries_priority_check"),
    CheckConstraint("channel IN ('email', 'sms', 'webhook')", name="deliveries_channel"),
    Index("deliveries_account", "account_id"),
    Index("deliveries_due", "priority", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("deliveries_created", "created_at"),  # the delivery log, newest first
)
# The delivery log's recipient filter: case-insensitive, exact or by prefix (text_pattern_ops serves LIKE 'x%').
Index(
    "deliveries_recipient",
    func.lower(deliveries.c.recipient).label("recipient_lower"),
    postgresql_ops={"recipient_lower": "text_pattern_ops"},
)

# Outgoing webhooks (notifier.webhooks): an account's HTTPS endpoints and the event types each is sent
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("events", ARRAY(Text), nullable=False),
    # the signing secret, sealed with NOTIFIER_WEBHOOK_SECRET_KEYS (never stored in clear); during a rotation's
    # overlap the previous one still signs, until previous_secret_expires_at
    Column("secret_sealed", Text, nullable=False),
    Column("previous_secret_sealed", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("disabled_reason", Text),
    Column("disabled_at", DateTime(timezone=True)),
    Column("created_by_email", String(320), nullable=False),  # the manager told when the endpoint is disabled
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('active', 'disabled')", name="webhook_endpoints_status"),
    Index("webhook_endpoints_account", "account_id"),
)

# What an institution chose to receive (notifier.preferences): no row, every mail.
notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("reminders", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text),  # the user who chose, or "unsubscribe link"
)

# Addresses whose mailbox refused mail for good (a hard bounce): mail to them fails at once until cleared.
bouncing_addresses = Table(
    "bouncing_addresses",
    metadata,
    Column("address", String(320), primary_key=True),  # lower-cased
    Column("kind", String(10), nullable=False, server_default="hard"),
    Column("reason", Text, nullable=False),
    Column("source", String(10), nullable=False),  # smtp: refused at RCPT TO; report: a provider's bounce report
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("account_id", Uuid),  # whose managers are told: the account of the mail that bounced
    CheckConstraint("address = lower(address)", name="bouncing_addresses_lower"),
    CheckConstraint("kind IN ('hard')", name="bouncing_addresses_kind"),
    CheckConstraint("source IN ('smtp', 'report')", name="bouncing_addresses_source"),
    Index("bouncing_addresses_account", "account_id"),
)

# The published sessions as catalogue told them (notifier.sessions): what an enrolment's mails say of a session, and
# the SEQUENCE of its calendar invitations (bumped each time its time changes or it is cancelled).
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", Uuid, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("status", String(10), nullable=False, server_default="published"),
    Column("invitation_sequence", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancel_reason", Text),  # the organiser's words, told in the enrolments' cancellation mails
    CheckConstraint("status IN ('published', 'cancelled')", name="sessions_status"),
)

# The enrolments as enrollment told them (notifier.enrolment_mails): whom a session's mails go to (the contact who
# asked for each enrolment), kept while the enrolment is active.
enrolments = Table(
    "enrolments",
    metadata,
    Column("enrollment_id", Uuid, primary_key=True),
    Column("session_id", Uuid, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("email", String(320)),  # null: the enrolment named nobody to tell
    Column("name", String(200)),
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('active', 'cancelled')", name="enrolments_status"),
    Index("enrolments_session", "session_id", postgresql_where=text("status = 'active'")),
)
