"""participation: links (hash only), their sharing, attendance, feedback, certificates; the theme's title in the
session copy and the institution's name on enrolments (printed on certificates)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("sessions", sa.Column("theme_title", sa.String(200)))
    op.add_column("enrolments", sa.Column("institution_name", sa.String(200)))
    op.create_table(
        "participation_links",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("enrollment_id", sa.Uuid, sa.ForeignKey("enrolments.id"), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        _at("created_at", nullable=False),
        sa.Column("created_by", sa.Uuid),
        _at("mailed_at"),
        _at("revoked_at"),
        sa.Column("revoked_by", sa.Uuid),
    )
    op.create_index(
        "participation_links_one_active",
        "participation_links",
        ["enrollment_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "link_shares",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("enrollment_id", sa.Uuid, sa.ForeignKey("enrolments.id"), nullable=False),
        sa.Column("account_id", sa.Uuid, nullable=False),
        sa.Column("channel", sa.String(5), sa.CheckConstraint("channel IN ('email', 'sms')"), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.String(200)),
        sa.Column("sender_name", sa.String(200)),
        sa.Column("message", sa.Text),
        sa.Column("language", sa.String(2), sa.CheckConstraint("language IN ('fr', 'en')"), nullable=False),
        _at("send_at", nullable=False),
        sa.Column(
            "status", sa.String(10), sa.CheckConstraint("status IN ('scheduled', 'sent', 'cancelled')"), nullable=False
        ),
        _at("sent_at"),
        sa.Column("requested_by", sa.Uuid),
        _at("created_at", nullable=False),
    )
    op.create_index("link_shares_due", "link_shares", ["send_at"], postgresql_where=sa.text("status = 'scheduled'"))
    op.create_index("link_shares_enrolment", "link_shares", ["enrollment_id", "created_at"])
    op.create_table(
        "attendances",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("enrollment_id", sa.Uuid, sa.ForeignKey("enrolments.id"), nullable=False),
        sa.Column("session_id", sa.Uuid, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("link_id", sa.Uuid, sa.ForeignKey("participation_links.id"), nullable=False),
        sa.Column("participant_name", sa.String(200), nullable=False),
        sa.Column("participant_email", sa.String(320)),
        _at("joined_at", nullable=False),
        _at("left_at"),
        sa.Column("left_source", sa.String(12)),
    )
    op.create_index("attendances_session", "attendances", ["session_id", "joined_at"])
    op.create_index("attendances_enrolment", "attendances", ["enrollment_id", "joined_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("session_id", sa.Uuid, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("enrollment_id", sa.Uuid, sa.ForeignKey("enrolments.id"), nullable=False),
        sa.Column("attendance_id", sa.Uuid, sa.ForeignKey("attendances.id")),
        sa.Column("respondent_name", sa.String(200)),
        sa.Column("rating", sa.SmallInteger, nullable=False),
        sa.Column("comment", sa.Text),
        _at("created_at", nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="feedback_rating_range"),
    )
    op.create_index(
        "feedback_one_per_institution",
        "feedback",
        ["enrollment_id"],
        unique=True,
        postgresql_where=sa.text("attendance_id IS NULL"),
    )
    op.create_index(
        "feedback_one_per_person",
        "feedback",
        ["attendance_id"],
        unique=True,
        postgresql_where=sa.text("attendance_id IS NOT NULL"),
    )
    op.create_index("feedback_session", "feedback", ["session_id"])
    op.create_table(
        "certificates",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("code", sa.String(19), nullable=False, unique=True),
        sa.Column("enrollment_id", sa.Uuid, sa.ForeignKey("enrolments.id"), nullable=False),
        sa.Column("session_id", sa.Uuid, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("attendance_id", sa.Uuid, sa.ForeignKey("attendances.id"), nullable=False, unique=True),
        sa.Column("participant_name", sa.String(200), nullable=False),
        sa.Column("participant_email", sa.String(320)),
        sa.Column("institution_name", sa.String(200)),
        sa.Column("session_title", sa.String(200), nullable=False),
        sa.Column("theme_title", sa.String(200)),
        _at("session_starts_at", nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("feedback_token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        _at("issued_at", nullable=False),
    )
    op.create_index("certificates_enrolment", "certificates", ["enrollment_id"])


def downgrade() -> None:
    for table in ("certificates", "feedback", "attendances", "link_shares", "participation_links"):
        op.drop_table(table)
    op.drop_column("enrolments", "institution_name")
    op.drop_column("sessions", "theme_title")
