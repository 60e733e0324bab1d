"""Tables of the notifier: the deliveries it owes and their log."""

from sqlalchemy import (
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
from sqlalchemy.dialects.postgresql import JSONB

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
    UniqueConstraint("event_id", "template", "recipient", name="deliveries_once_per_event"),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="deliveries_status"),
    CheckConstraint("priority IN (0, 1)", name="deliveries_priority_check"),
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
