"""wallet, orders, ledger, documents; the price list seeded

Revision ID: 0002
Revises: 0001
"""

import uuid

from alembic import op
from sqlalchemy import text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = (
    """CREATE TABLE price_items (
        id uuid PRIMARY KEY,
        code varchar(40) NOT NULL UNIQUE,
        label_fr varchar(120) NOT NULL,
        label_en varchar(120) NOT NULL,
        tokens integer NOT NULL CHECK (tokens BETWEEN 1 AND 1000),
        bonus_tokens integer NOT NULL CHECK (bonus_tokens BETWEEN 0 AND 1000),
        net_cents bigint NOT NULL CHECK (net_cents BETWEEN 0 AND 100000000),
        vat_rate_bp integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
        validity varchar(20) NOT NULL CHECK (validity IN ('24_months', 'school_year')),
        purchase_order_allowed boolean NOT NULL,
        active boolean NOT NULL,
        position integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE wallets (
        account_id uuid PRIMARY KEY,
        institution_name varchar(200),
        verified_at timestamptz,
        closed_at timestamptz
    )""",
    """CREATE TABLE orders (
        id uuid PRIMARY KEY,
        reference varchar(20) NOT NULL UNIQUE,
        account_id uuid NOT NULL,
        status varchar(30) NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'payment_failed', 'expired',
            'cancelled', 'awaiting_validation', 'validated', 'refused')),
        payment_method varchar(20) NOT NULL CHECK (payment_method IN ('card', 'purchase_order')),
        lines jsonb NOT NULL,
        net_cents bigint NOT NULL CHECK (net_cents >= 0),
        vat_cents bigint NOT NULL CHECK (vat_cents >= 0),
        gross_cents bigint NOT NULL CHECK (gross_cents = net_cents + vat_cents),
        vat_rate_bp integer NOT NULL,
        tokens integer NOT NULL CHECK (tokens >= 1),
        bonus_tokens integer NOT NULL CHECK (bonus_tokens >= 0),
        buyer jsonb NOT NULL,
        notice jsonb,
        buyer_order_number varchar(60),
        service_code varchar(100),
        commitment_number varchar(60),
        signed_order bytea,
        provider varchar(20),
        provider_session_id varchar(255) UNIQUE,
        checkout_url text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        paid_at timestamptz,
        validated_at timestamptz,
        validated_by uuid,
        refused_at timestamptz,
        refusal_reason varchar(500)
    )""",
    "CREATE INDEX orders_account ON orders (account_id, created_at DESC)",
    "CREATE INDEX orders_status ON orders (status, created_at)",
    """CREATE TABLE lots (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL,
        order_id uuid NOT NULL REFERENCES orders (id),
        tokens integer NOT NULL CHECK (tokens >= 1),
        remaining integer NOT NULL CHECK (remaining BETWEEN 0 AND tokens),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        expired_at timestamptz,
        warned_at timestamptz
    )""",
    "CREATE INDEX lots_live ON lots (account_id, expires_at, id) WHERE expired_at IS NULL",
    "CREATE INDEX lots_due ON lots (expires_at) WHERE expired_at IS NULL",
    "CREATE INDEX lots_order ON lots (order_id)",
    """CREATE TABLE ledger (
        id bigserial PRIMARY KEY,
        account_id uuid NOT NULL,
        kind varchar(10) NOT NULL CHECK (kind IN ('credit', 'debit', 'refund', 'expiry')),
        tokens integer NOT NULL CHECK (tokens >= 1),
        lot_id uuid NOT NULL REFERENCES lots (id),
        operation_key varchar(120) NOT NULL,
        order_id uuid,
        enrollment_id uuid,
        session_id uuid,
        balance_after integer NOT NULL CHECK (balance_after >= 0),
        created_at timestamptz NOT NULL,
        UNIQUE (operation_key, lot_id)
    )""",
    "CREATE INDEX ledger_account ON ledger (account_id, id DESC)",
    # Append-only: the ledger is the history; a mistake is corrected by another line, never by an edit.
    """CREATE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
        FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only()""",
    """CREATE TABLE enrollment_charges (
        enrollment_id uuid PRIMARY KEY,
        account_id uuid NOT NULL,
        session_id uuid NOT NULL,
        tokens integer NOT NULL CHECK (tokens >= 1),
        status varchar(20) NOT NULL CHECK (status IN ('debited', 'rejected', 'refunded')),
        reason varchar(40),
        lots jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        refunded_at timestamptz
    )""",
    "CREATE INDEX enrollment_charges_session ON enrollment_charges (session_id) WHERE status = 'debited'",
    """CREATE TABLE documents (
        id uuid PRIMARY KEY,
        kind varchar(20) NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
        number varchar(20) NOT NULL UNIQUE,
        year integer NOT NULL,
        sequence integer NOT NULL,
        account_id uuid NOT NULL,
        order_id uuid NOT NULL REFERENCES orders (id),
        invoice_id uuid REFERENCES documents (id),
        issued_at timestamptz NOT NULL,
        sale_date date NOT NULL,
        due_date date,
        payment_method varchar(20) NOT NULL,
        paid_at timestamptz,
        net_cents bigint NOT NULL,
        vat_cents bigint NOT NULL,
        gross_cents bigint NOT NULL,
        vat_rate_bp integer NOT NULL,
        tokens integer NOT NULL,
        buyer jsonb NOT NULL,
        reason varchar(500),
        pdf bytea NOT NULL,
        UNIQUE (kind, year, sequence),
        CHECK ((kind = 'credit_note') = (invoice_id IS NOT NULL))
    )""",
    "CREATE INDEX documents_account ON documents (account_id, issued_at DESC)",
    "CREATE UNIQUE INDEX documents_one_invoice_per_order ON documents (order_id) WHERE kind = 'invoice'",
    "CREATE UNIQUE INDEX documents_one_credit_note_per_invoice ON documents (invoice_id) WHERE kind = 'credit_note'",
    """CREATE TABLE document_sequences (
        kind varchar(20) NOT NULL,
        year integer NOT NULL,
        last integer NOT NULL,
        PRIMARY KEY (kind, year)
    )""",
    """CREATE TABLE webhook_events (
        event_id varchar(255) PRIMARY KEY,
        kind varchar(20) NOT NULL,
        order_id uuid,
        received_at timestamptz NOT NULL
    )""",
)

# The price list of the first day (organisers edit it in the back-office).
SEED = (
    ("unit", "Jeton", "Token", 1, 0, 6000, True, 1),
    ("pack-5", "Forfait 5 jetons + 1 offert", "Bundle of 5 tokens + 1 free", 5, 1, 30000, False, 2),
    ("pack-10", "Forfait 10 jetons + 3 offerts", "Bundle of 10 tokens + 3 free", 10, 3, 60000, False, 3),
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    for code, label_fr, label_en, tokens, bonus, net_cents, purchase_order, position in SEED:
        op.get_bind().execute(
            text(
                "INSERT INTO price_items (id, code, label_fr, label_en, tokens, bonus_tokens, net_cents, vat_rate_bp,"
                " validity, purchase_order_allowed, active, position)"
                " VALUES (:id, :code, :fr, :en, :tokens, :bonus, :net, 2000, '24_months', :po, true, :position)"
            ),
            {
                "id": (uuid.uuid5(uuid.NAMESPACE_URL, f"visiopass:price-item:{code}")),
                "code": code,
                "fr": label_fr,
                "en": label_en,
                "tokens": tokens,
                "bonus": bonus,
                "net": net_cents,
                "po": purchase_order,
                "position": position,
            },
        )


def downgrade() -> None:
    for table in ("webhook_events", "document_sequences", "documents", "enrollment_charges", "ledger", "lots"):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION billing_ledger_append_only()")
    for table in ("orders", "wallets", "price_items"):
        op.execute(f"DROP TABLE {table}")
