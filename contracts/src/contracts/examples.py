"""One valid example of every current event, for tests and documentation."""

# ruff: noqa: S106  (the tokens below are made-up example data)

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from contracts.base import Event, Money, VatAmounts
from contracts.events.accounts import (
    AccountClosed,
    AccountRegistered,
    AccountVerified,
    EmailChanged,
    EmailChangeRequested,
    MemberAdded,
    MemberInvited,
    MemberRemoved,
    PasswordChanged,
    PasswordResetRequested,
    VerificationLinkRequested,
)
from contracts.events.billing import (
    InvoiceIssued,
    TokenDebitRejected,
    TokenPurchased,
    TokensDebited,
    TokensExpired,
    TokensExpiringSoon,
    TokensRefunded,
)
from contracts.events.catalogue import (
    SessionCancelled,
    SessionEnded,
    SessionRescheduled,
    SessionScheduled,
    SessionStarting,
)
from contracts.events.enrollment import (
    AttendanceRecorded,
    CertificateIssued,
    Enrolled,
    EnrollmentCancelled,
    EnrollmentRejected,
    EnrollmentRequested,
    ParticipationLinkIssued,
)
from contracts.events.notifier import NotificationFailed, NotificationSent

ACCOUNT_ID = uuid.UUID("a0000000-0000-4000-8000-000000000001")
USER_ID = uuid.UUID("a0000000-0000-4000-8000-000000000002")
MEMBER_ID = uuid.UUID("a0000000-0000-4000-8000-000000000003")
ORDER_ID = uuid.UUID("b0000000-0000-4000-8000-000000000001")
LOT_ID = uuid.UUID("b0000000-0000-4000-8000-000000000002")
INVOICE_ID = uuid.UUID("b0000000-0000-4000-8000-000000000003")
THEME_ID = uuid.UUID("c0000000-0000-4000-8000-000000000001")
SESSION_ID = uuid.UUID("c0000000-0000-4000-8000-000000000002")
ENROLLMENT_ID = uuid.UUID("d0000000-0000-4000-8000-000000000001")
ATTENDANCE_ID = uuid.UUID("d0000000-0000-4000-8000-000000000002")
CERTIFICATE_ID = uuid.UUID("d0000000-0000-4000-8000-000000000003")
DELIVERY_ID = uuid.UUID("e0000000-0000-4000-8000-000000000001")
CAUSE_ID = uuid.UUID("e0000000-0000-4000-8000-000000000002")

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
STARTS_AT = datetime(2025, 3, 20, 13, 30, tzinfo=UTC)
LATER = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

PRICE = VatAmounts(
    net=Money(amount_cents=6000), vat=Money(amount_cents=1200), gross=Money(amount_cents=7200), vat_rate_bp=2000
)
ENROLMENT = {"enrollment_id": ENROLLMENT_ID, "account_id": ACCOUNT_ID, "session_id": SESSION_ID}

_EXAMPLES: list[Event] = [
    AccountRegistered(
        account_id=ACCOUNT_ID,
        institution_name="Lycée Jean Moulin",
        institution_kind="school",
        contact_name="Claire Martin",
        email="claire.martin@example.fr",
        language="fr",
        verification_token="vKq3Xw9mZ2rT7yB1nL5sD8fH4jP6cA0e",
        verification_expires_at=datetime(2025, 3, 11, 9, 0, tzinfo=UTC),
    ),
    AccountVerified(account_id=ACCOUNT_ID, email="claire.martin@example.fr", verified_at=NOW),
    PasswordResetRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        email="claire.martin@example.fr",
        language="fr",
        reset_token="rT7yB1nL5sD8fH4jP6cA0evKq3Xw9mZ2",
        expires_at=datetime(2025, 3, 10, 10, 0, tzinfo=UTC),
    ),
    VerificationLinkRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        contact_name="Claire Martin",
        email="claire.martin@example.fr",
        language="fr",
        verification_token="nW2rT7yB1nL5sD8fH4jP6cA0evKq3Xw9",
        expires_at=datetime(2025, 3, 12, 9, 0, tzinfo=UTC),
    ),
    PasswordChanged(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        email="claire.martin@example.fr",
        language="fr",
        changed_at=datetime(2025, 3, 10, 9, 20, tzinfo=UTC),
        reason="reset",
    ),
    MemberInvited(
        account_id=ACCOUNT_ID,
        member_id=MEMBER_ID,
        institution_name="Lycée Jean Moulin",
        name="Paul Durand",
        email="paul.durand@example.fr",
        language="en",
        invitation_token="iN5sD8fH4jP6cA0evKq3Xw9mZ2rT7yB1",
        expires_at=datetime(2025, 3, 17, 9, 0, tzinfo=UTC),
    ),
    MemberAdded(
        account_id=ACCOUNT_ID,
        member_id=MEMBER_ID,
        institution_name="Lycée Jean Moulin",
        name="Paul Durand",
        email="paul.durand@example.fr",
        language="fr",
    ),
    MemberRemoved(account_id=ACCOUNT_ID, member_id=MEMBER_ID, removed_at=NOW),
    EmailChangeRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        name="Claire Martin",
        new_email="claire.martin@lycee-moulin.fr",
        language="fr",
        confirmation_token="cH4jP6cA0evKq3Xw9mZ2rT7yB1nL5sD8",
        expires_at=datetime(2025, 3, 12, 9, 0, tzinfo=UTC),
    ),
    EmailChanged(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        old_email="claire.martin@example.fr",
        new_email="claire.martin@lycee-moulin.fr",
        language="fr",
        changed_at=datetime(2025, 3, 10, 10, 0, tzinfo=UTC),
        revert_token="rV3xW9mZ2rT7yB1nL5sD8fH4jP6cA0ev",
        revert_expires_at=datetime(2025, 3, 17, 10, 0, tzinfo=UTC),
    ),
    AccountClosed(account_id=ACCOUNT_ID, closed_at=NOW, notice_emails=["claire.martin@example.fr"], language="fr"),
    TokenPurchased(
        account_id=ACCOUNT_ID,
        order_id=ORDER_ID,
        lot_id=LOT_ID,
        tokens=10,
        bonus_tokens=1,
        amounts=PRICE,
        payment_method="card",
        expires_at=LATER,
        balance_after=11,
    ),
    TokensDebited(**ENROLMENT, lot_id=LOT_ID, balance_after=10),
    TokenDebitRejected(**ENROLMENT, reason="insufficient_balance"),
    TokensRefunded(**ENROLMENT, lot_id=LOT_ID, balance_after=11),
    TokensExpired(account_id=ACCOUNT_ID, lot_id=LOT_ID, tokens=3, expired_at=LATER, balance_after=0),
    TokensExpiringSoon(account_id=ACCOUNT_ID, lot_id=LOT_ID, tokens=3, expires_at=LATER),
    InvoiceIssued(
        invoice_id=INVOICE_ID,
        number="VP-2025-000123",
        account_id=ACCOUNT_ID,
        order_id=ORDER_ID,
        amounts=PRICE,
        issued_at=NOW,
        pdf_url=f"/invoices/{INVOICE_ID}.pdf",
    ),
    SessionScheduled(
        session_id=SESSION_ID,
        theme_id=THEME_ID,
        title="Pronote : prise en main",
        starts_at=STARTS_AT,
        duration_minutes=90,
        capacity=12,
        provider="bbb",
    ),
    SessionRescheduled(
        session_id=SESSION_ID,
        previous_starts_at=STARTS_AT,
        starts_at=datetime(2025, 3, 21, 13, 30, tzinfo=UTC),
        duration_minutes=90,
    ),
    SessionCancelled(session_id=SESSION_ID, reason="Formateur indisponible", cancelled_at=NOW),
    SessionStarting(session_id=SESSION_ID, offset="J-2", starts_at=STARTS_AT),
    SessionEnded(session_id=SESSION_ID, ended_at=datetime(2025, 3, 20, 15, 0, tzinfo=UTC)),
    EnrollmentRequested(**ENROLMENT, privatisation=False),
    Enrolled(**ENROLMENT),
    EnrollmentRejected(**ENROLMENT, reason="session_full"),
    EnrollmentCancelled(**ENROLMENT, refund=True),
    ParticipationLinkIssued(**ENROLMENT, join_token="jT4jP6cA0evKq3Xw9mZ2rT7yB1nL5sD8"),
    AttendanceRecorded(
        **ENROLMENT,
        attendance_id=ATTENDANCE_ID,
        participant_name="Paul Durand",
        participant_email="paul.durand@example.fr",
        joined_at=STARTS_AT,
    ),
    CertificateIssued(
        **ENROLMENT,
        certificate_id=CERTIFICATE_ID,
        attendance_id=ATTENDANCE_ID,
        participant_name="Paul Durand",
        pdf_url=f"/certificates/{CERTIFICATE_ID}.pdf",
        issued_at=datetime(2025, 3, 20, 15, 5, tzinfo=UTC),
    ),
    NotificationSent(
        delivery_id=DELIVERY_ID,
        template="account_verification",
        recipient="claire.martin@example.fr",
        caused_by=CAUSE_ID,
        sent_at=NOW,
    ),
    NotificationFailed(
        delivery_id=DELIVERY_ID,
        template="account_verification",
        recipient="claire.martin@example.fr",
        caused_by=CAUSE_ID,
        error="550 5.1.1 mailbox unavailable",
        attempts=5,
        failed_at=NOW,
    ),
]

EXAMPLES: dict[type[Event], Event] = {type(event): event for event in _EXAMPLES}

E = TypeVar("E", bound=Event)


def example(model: type[E]) -> E:
    """The example of `model`, typed as such."""
    event = EXAMPLES[model]
    if not isinstance(event, model):
        raise TypeError(f"EXAMPLES[{model.__name__}] is a {type(event).__name__}")
    return event
