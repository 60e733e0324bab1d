"""One valid example of every current event, for tests and documentation."""

# ruff: noqa: S106  (the tokens below are made-up example data)

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from contracts.base import Event, Money, Notice, VatAmounts
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
    SignUpAttemptedWithTakenEmail,
    VerificationLinkRequested,
)
from contracts.events.billing import (
    CreditNoteIssued,
    InvoiceIssued,
    LotTokens,
    PurchaseOrderReceived,
    PurchaseOrderRefused,
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
    SessionUpdated,
)
from contracts.events.enrollment import (
    AttendanceRecorded,
    CertificateIssued,
    Enrolled,
    EnrollmentCancelled,
    EnrollmentRejected,
    EnrollmentRequested,
    ParticipationLinkIssued,
    ParticipationLinkShared,
    WaitingListPlaceOffered,
)
from contracts.events.notifier import NotificationFailed, NotificationSent
from contracts.secrets import Keyring

ACCOUNT_ID = uuid.UUID("a0000000-0000-4000-8000-000000000001")
USER_ID = uuid.UUID("a0000000-0000-4000-8000-000000000002")
MEMBER_ID = uuid.UUID("a0000000-0000-4000-8000-000000000003")
ORDER_ID = uuid.UUID("b0000000-0000-4000-8000-000000000001")
LOT_ID = uuid.UUID("b0000000-0000-4000-8000-000000000002")
INVOICE_ID = uuid.UUID("b0000000-0000-4000-8000-000000000003")
CREDIT_NOTE_ID = uuid.UUID("b0000000-0000-4000-8000-000000000004")
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
BUYER = Notice(email="claire.martin@example.fr", name="Claire Martin", language="fr")
ENROLMENT = {"enrollment_id": ENROLLMENT_ID, "account_id": ACCOUNT_ID, "session_id": SESSION_ID}

# The key that sealed the examples' tokens (contracts.secrets): public, for tests and documentation only.
EXAMPLE_KEYRING = Keyring.parse("example:+KomIvhH6VwWeulCJeWsyn78MhL5CEyzJHeNmSzTsyM=")
# What the examples' sealed tokens open to (event name, field) -> plain token.
EXAMPLE_TOKENS = {
    ("AccountRegistered", "verification_token"): "vKq3Xw9mZ2rT7yB1nL5sD8fH4jP6cA0e",
    ("PasswordResetRequested", "reset_token"): "rT7yB1nL5sD8fH4jP6cA0evKq3Xw9mZ2",
    ("VerificationLinkRequested", "verification_token"): "nW2rT7yB1nL5sD8fH4jP6cA0evKq3Xw9",
    ("MemberInvited", "invitation_token"): "iN5sD8fH4jP6cA0evKq3Xw9mZ2rT7yB1",
    ("MemberAdded", "join_token"): "jN4kR8vT2wX6zB0mQ5sL9dF3hY7cP1aE",
    ("EmailChangeRequested", "confirmation_token"): "cH4jP6cA0evKq3Xw9mZ2rT7yB1nL5sD8",
    ("EmailChanged", "revert_token"): "rV3xW9mZ2rT7yB1nL5sD8fH4jP6cA0ev",
    ("ParticipationLinkIssued", "join_token"): "jT4jP6cA0evKq3Xw9mZ2rT7yB1nL5sD8",
    ("ParticipationLinkShared", "join_token"): "sH8fH4jP6cA0evKq3Xw9mZ2rT7yB1nL5",
    ("CertificateIssued", "feedback_token"): "fB2rT7yB1nL5sD8fH4jP6cA0evKq3Xw9",
}

_EXAMPLES: list[Event] = [
    AccountRegistered(
        account_id=ACCOUNT_ID,
        institution_name="Lycée Jean Moulin",
        institution_kind="school",
        contact_name="Claire Martin",
        email="claire.martin@example.fr",
        language="fr",
        verification_token="v1.example.UzHHUZbMTXX0iGTdBAHaNtoiGWy4WPchNp8jcP49sJS0h96eHyWUj9dLBRGooKujaxNLYybLvmY9AADS",
        verification_expires_at=datetime(2025, 3, 11, 9, 0, tzinfo=UTC),
    ),
    SignUpAttemptedWithTakenEmail(
        account_id=ACCOUNT_ID, user_id=USER_ID, email="claire.martin@example.fr", language="fr", attempted_at=NOW
    ),
    AccountVerified(account_id=ACCOUNT_ID, email="claire.martin@example.fr", verified_at=NOW),
    PasswordResetRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        email="claire.martin@example.fr",
        language="fr",
        reset_token="v1.example.sQ2V3F8ZAqsi-ANYQn3xK_qnzHjJwk0TS-81S1ULnfFZ5rqQVPhUlPbL74RvQh6gzwYEvW6ZIBLUhjyV",
        expires_at=datetime(2025, 3, 10, 10, 0, tzinfo=UTC),
    ),
    VerificationLinkRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        contact_name="Claire Martin",
        email="claire.martin@example.fr",
        language="fr",
        verification_token="v1.example.BRcbzKvpzCwf9X6D5xD7mvfHutX3gn7ycEQAVzEL_i0F1c2yS8kNXS5s3COynpSajTwYxCwdwYcgSEuq",
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
        invitation_token="v1.example.GS4UMvtOrRq0w0gV_OkIBQVihzEpPy4nXLJY3hdyzBFo8zjGlgxYZYVMxft1-B251FUoYvoK_PpWJKIG",
        expires_at=datetime(2025, 3, 17, 9, 0, tzinfo=UTC),
    ),
    MemberAdded(
        account_id=ACCOUNT_ID,
        member_id=MEMBER_ID,
        institution_name="Lycée Jean Moulin",
        name="Paul Durand",
        email="paul.durand@example.fr",
        language="fr",
        join_token="v1.example.HWPrHnbF5aN6EcJYzVoN60fs_uxtYJnYlKQYeyu53ywAhuzXfEXB3_1TvIfDUFj-0ihkTpQvDj1k0A19",
        expires_at=datetime(2025, 3, 17, 9, 0, tzinfo=UTC),
    ),
    MemberRemoved(account_id=ACCOUNT_ID, member_id=MEMBER_ID, removed_at=NOW),
    EmailChangeRequested(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        name="Claire Martin",
        new_email="claire.martin@lycee-moulin.fr",
        language="fr",
        confirmation_token="v1.example.ndrPH-EVP4mUCR8XJeeURqT5Ai8ieEszNNqFS7-ekjgozufEWD0Lh_tADO4hYKrBXwVC8Fe5PVQTrq4a",
        expires_at=datetime(2025, 3, 12, 9, 0, tzinfo=UTC),
    ),
    EmailChanged(
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        old_email="claire.martin@example.fr",
        new_email="claire.martin@lycee-moulin.fr",
        language="fr",
        changed_at=datetime(2025, 3, 10, 10, 0, tzinfo=UTC),
        revert_token="v1.example.Y9brLcXwfS2OyHfGnY26pF3FRrAmI2uFUrQ5Jr8_9RUNVANWg_djn1c7E4q-t7ORpzi1Do7AtF2C5ki0",
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
    TokensDebited(
        **ENROLMENT, lot_id=LOT_ID, balance_after=10, lots=[LotTokens(lot_id=LOT_ID, tokens=1, expires_at=LATER)]
    ),
    TokenDebitRejected(**ENROLMENT, reason="insufficient_balance"),
    TokensRefunded(
        **ENROLMENT, lot_id=LOT_ID, balance_after=11, lots=[LotTokens(lot_id=LOT_ID, tokens=1, expires_at=LATER)]
    ),
    TokensExpired(account_id=ACCOUNT_ID, lot_id=LOT_ID, tokens=3, expired_at=LATER, balance_after=0),
    TokensExpiringSoon(account_id=ACCOUNT_ID, lot_id=LOT_ID, tokens=3, expires_at=LATER, notice=BUYER),
    PurchaseOrderReceived(
        account_id=ACCOUNT_ID,
        order_id=ORDER_ID,
        reference="C2025-000042",
        buyer_order_number="BC-2025-117",
        institution_name="Lycée Jean Moulin",
        tokens=10,
        amounts=PRICE,
        received_at=NOW,
        notice=BUYER,
    ),
    PurchaseOrderRefused(
        account_id=ACCOUNT_ID,
        order_id=ORDER_ID,
        reference="C2025-000042",
        reason="Numéro d'engagement manquant",
        refused_at=NOW,
        notice=BUYER,
    ),
    InvoiceIssued(
        invoice_id=INVOICE_ID,
        number="F2025-000123",
        account_id=ACCOUNT_ID,
        order_id=ORDER_ID,
        amounts=PRICE,
        issued_at=NOW,
        pdf_url=f"/api/v1/invoices/{INVOICE_ID}/pdf",
        payment_method="card",
        paid=True,
        tokens=1,
        notice=BUYER,
    ),
    CreditNoteIssued(
        invoice_id=INVOICE_ID,
        credit_note_id=CREDIT_NOTE_ID,
        number="A2025-000007",
        invoice_number="F2025-000123",
        account_id=ACCOUNT_ID,
        amounts=PRICE,
        reason="Commande annulée",
        issued_at=NOW,
        pdf_url=f"/api/v1/credit-notes/{CREDIT_NOTE_ID}/pdf",
        notice=BUYER,
    ),
    SessionScheduled(
        session_id=SESSION_ID,
        theme_id=THEME_ID,
        title="Pronote : prise en main",
        starts_at=STARTS_AT,
        duration_minutes=90,
        capacity=12,
        premium_price_tokens=8,
        provider="bbb",
    ),
    SessionUpdated(
        session_id=SESSION_ID,
        theme_id=THEME_ID,
        title="Pronote : prise en main (niveau 1)",
        starts_at=STARTS_AT,
        duration_minutes=90,
        capacity=None,
        access="code",
        provider="bbb",
    ),
    SessionRescheduled(
        session_id=SESSION_ID,
        previous_starts_at=STARTS_AT,
        starts_at=datetime(2025, 3, 21, 13, 30, tzinfo=UTC),
        duration_minutes=90,
    ),
    SessionCancelled(session_id=SESSION_ID, reason="Formateur indisponible", cancelled_at=NOW),
    SessionStarting(
        session_id=SESSION_ID, offset="J-2", starts_at=STARTS_AT, ends_at=datetime(2025, 3, 20, 15, 0, tzinfo=UTC)
    ),
    SessionEnded(session_id=SESSION_ID, ended_at=datetime(2025, 3, 20, 15, 0, tzinfo=UTC)),
    EnrollmentRequested(**ENROLMENT, privatisation=False),
    Enrolled(**ENROLMENT, notice=BUYER),
    EnrollmentRejected(**ENROLMENT, reason="session_full", notice=BUYER),
    EnrollmentCancelled(**ENROLMENT, refund=True, notice=BUYER),
    ParticipationLinkIssued(
        **ENROLMENT,
        join_token="v1.example.A2ds-A0ErE6dq2GPvn2sfYt6BWJtiWZaswbkyUh1eySwK_szFtj9OXQcQ51EL39jkW4GrE2siU59nxh_",
    ),
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
        verification_code="7KQ2-M9XD-4TRB-H3WF",
        feedback_token="v1.example.FlOuaxMY5ppjV4WuuoOkME0rCNgdAWCT7wtgutDFCLuU0BgFU05vamWjlcDiYukNYApAt0dAuwuSeLvm",
        notice=BUYER,
    ),
    ParticipationLinkShared(
        **ENROLMENT,
        share_id=uuid.UUID("d0000000-0000-4000-8000-000000000005"),
        channel="email",
        recipient="paul.durand@example.fr",
        recipient_name="Paul Durand",
        sender_name="Claire Martin",
        message="Paul, voici le lien pour la session de jeudi.",
        language="fr",
        join_token="v1.example.9k3INbLurCc-n85KmnhaPDmQlN7Zu-ztD4slhLPKUcoR4o7WzXFihQfiynucDcZa1kn3Ihork8PTxsqR",
    ),
    WaitingListPlaceOffered(
        entry_id=uuid.UUID("d0000000-0000-4000-8000-000000000004"),
        account_id=ACCOUNT_ID,
        session_id=SESSION_ID,
        offered_at=NOW,
        hold_until=datetime(2025, 3, 11, 9, 0, tzinfo=UTC),
        notice=BUYER,
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
