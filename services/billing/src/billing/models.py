"""Tables of the billing service (its own database); outbox and inbox come from servicekit.

The rules the database itself enforces (migration 0002): a lot never holds fewer than 0 tokens nor more than
it was credited; one charge per enrolment (so one debit, whatever the redelivery); one ledger line per
(operation, lot); one webhook event per provider event id; one document number per kind and year, taken from a
counter row locked inside the issuing transaction (gap-free, docs/billing.md)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

price_items = Table(
    "price_items",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("label_fr", String(120), nullable=False),
    Column("label_en", String(120), nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("bonus_tokens", Integer, nullable=False),
    Column("net_cents", BigInteger, nullable=False),  # price of one item before VAT
    Column("vat_rate_bp", Integer, nullable=False),  # 2000 = 20 %
    Column("validity", String(20), nullable=False),  # 24_months | school_year
    Column("purchase_order_allowed", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("position", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What billing knows of each account, from accounts' events: whether it may be debited, and its name.
wallets = Table(
    "wallets",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("institution_name", String(200)),
    Column("verified_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("reference", String(20), nullable=False, unique=True),
    Column("account_id", Uuid, nullable=False),
    Column("status", String(30), nullable=False),
    Column("payment_method", String(20), nullable=False),
    Column("lines", JSONB, nullable=False),  # copied from the price list when ordered: later prices never apply
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("gross_cents", BigInteger, nullable=False),
    Column("vat_rate_bp", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),  # bonus included
    Column("bonus_tokens", Integer, nullable=False),
    Column("buyer", JSONB, nullable=False),
    Column("notice", JSONB),
    Column("buyer_order_number", String(60)),
    Column("service_code", String(100)),
    Column("commitment_number", String(60)),
    Column("signed_order", LargeBinary),
    Column("provider", String(20)),
    Column("provider_session_id", String(255), unique=True),
    Column("checkout_url", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True)),
    Column("validated_at", DateTime(timezone=True)),
    Column("validated_by", Uuid),
    Column("refused_at", DateTime(timezone=True)),
    Column("refusal_reason", String(500)),
    # sessions a purchase order names: enrolled in once its tokens are credited (migration 0003)
    Column("enrol_session_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    Index("orders_account", "account_id", text("created_at DESC")),
    Index("orders_status", "status", "created_at"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=False),
    Column("tokens", Integer, nullable=False),  # credited, bonus included
    Column("remaining", Integer, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expired_at", DateTime(timezone=True)),  # set once, by the expiry job
    Column("warned_at", DateTime(timezone=True)),  # set once, by the expiry job (30 days before)
    Index("lots_live", "account_id", "expires_at", "id", postgresql_where=text("expired_at IS NULL")),
    Index("lots_due", "expires_at", postgresql_where=text("expired_at IS NULL")),
    Index("lots_order", "order_id"),
)

# Append-only: every credit, debit, refund and expiry, one line per lot touched.
ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account_id", Uuid, nullable=False),
    Column("kind", String(10), nullable=False),  # credit | debit | refund | expiry
    Column("tokens", Integer, nullable=False),  # > 0; the kind gives the sign
    Column("lot_id", Uuid, ForeignKey("lots.id"), nullable=False),
    Column("operation_key", String(120), nullable=False),  # the idempotency key of the operation
    Column("order_id", Uuid),
    Column("enrollment_id", Uuid),
    Column("session_id", Uuid),
    Column("balance_after", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("operation_key", "lot_id"),
    Index("ledger_account", "account_id", text("id DESC")),
)

# One row per enrolment ever asked to pay: the guard against a second debit or a second refund.
enrollment_charges = Table(
    "enrollment_charges",
    metadata,
    Column("enrollment_id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("session_id", Uuid, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # debited | rejected | refunded
    Column("reason", String(40)),
    Column("lots", JSONB, nullable=False),  # [{lot_id, tokens, expires_at}] taken, for the refund
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("refunded_at", DateTime(timezone=True)),
    Index("enrollment_charges_session", "session_id", postgresql_where=text("status = 'debited'")),
)

# Invoices and credit notes; immutable once issued, except the payment received on an invoice payable by transfer.
documents = Table(
    "documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),  # invoice | credit_note
    Column("number", String(20), nullable=False, unique=True),
    Column("year", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=False),
    Column("invoice_id", Uuid, ForeignKey("documents.id")),  # the invoice a credit note corrects
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("due_date", Date),
    Column("payment_method", String(20), nullable=False),
    Column("paid_at", DateTime(timezone=True)),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("gross_cents", BigInteger, nullable=False),
    Column("vat_rate_bp", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("buyer", JSONB, nullable=False),
    Column("reason", String(500)),
    Column("pdf", LargeBinary, nullable=False),
    UniqueConstraint("kind", "year", "sequence"),
    Index("documents_account", "account_id", text("issued_at DESC")),
    Index("documents_one_invoice_per_order", "order_id", unique=True, postgresql_where=text("kind = 'invoice'")),
    Index(
        "documents_one_credit_note_per_invoice",
        "invoice_id",
        unique=True,
        postgresql_where=text("kind = 'credit_note'"),
    ),
)

document_sequences = Table(
    "document_sequences",
    metadata,
    Column("kind", String(20), primary_key=True),  # invoice | credit_note | order
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("order_id", Uuid),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
