"""The topic registry: who publishes which events where, and who consumes them."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from contracts.base import ContractError, Event
from contracts.events import accounts, billing, catalogue, enrollment, notifier


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    consumers: tuple[str, ...]
    events: tuple[type[Event], ...]
    description: str = field(default="", compare=False)

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    @cached_property
    def adapter(self) -> TypeAdapter[Event]:
        """Validates the topic's current events, dispatching on the `type` field."""
        if len(self.events) == 1:
            return TypeAdapter(self.events[0])
        union: Any = Union[self.events]  # noqa: UP007
        return TypeAdapter(Annotated[union, Field(discriminator="type")])


TOPICS: dict[str, Topic] = {
    topic.name: topic
    for topic in (
        Topic(
            name="accounts.account",
            owner="accounts",
            consumers=("billing", "notifier"),
            description="Life of an institution's account: sign-up, verification, members, closing.",
            events=(
                accounts.AccountRegistered,
                accounts.SignUpAttemptedWithTakenEmail,
                accounts.AccountVerified,
                accounts.VerificationLinkRequested,
                accounts.PasswordResetRequested,
                accounts.PasswordChanged,
                accounts.MemberInvited,
                accounts.MemberAdded,
                accounts.MemberRemoved,
                accounts.EmailChangeRequested,
                accounts.EmailChanged,
                accounts.AccountClosed,
            ),
        ),
        Topic(
            name="billing.wallet",
            owner="billing",
            consumers=("enrollment", "notifier"),
            description="Token wallet of an account: purchases, purchase orders, debits, refunds, expiries.",
            events=(
                billing.TokenPurchased,
                billing.TokensDebited,
                billing.TokenDebitRejected,
                billing.TokensRefunded,
                billing.TokensExpired,
                billing.TokensExpiringSoon,
                billing.PurchaseOrderReceived,
                billing.PurchaseOrderRefused,
            ),
        ),
        Topic(
            name="billing.invoice",
            owner="billing",
            consumers=("notifier",),
            description="Invoices and credit notes issued to accounts.",
            events=(billing.InvoiceIssued, billing.CreditNoteIssued),
        ),
        Topic(
            name="catalogue.session",
            owner="catalogue",
            consumers=("billing", "enrollment", "notifier"),
            description="Schedule of live sessions: scheduling, changes, cancellations, start offsets, end.",
            events=(
                catalogue.SessionScheduled,
                catalogue.SessionUpdated,
                catalogue.SessionRescheduled,
                catalogue.SessionCancelled,
                catalogue.SessionStarting,
                catalogue.SessionEnded,
            ),
        ),
        Topic(
            name="enrollment.enrollment",
            owner="enrollment",
            consumers=("billing", "catalogue", "notifier"),
            description="Enrolment saga of an institution in a session, its link, attendance and certificates.",
            events=(
                enrollment.EnrollmentRequested,
                enrollment.Enrolled,
                enrollment.EnrollmentRejected,
                enrollment.EnrollmentCancelled,
                enrollment.ParticipationLinkIssued,
                enrollment.AttendanceRecorded,
                enrollment.CertificateIssued,
                enrollment.WaitingListPlaceOffered,
                enrollment.ParticipationLinkShared,
            ),
        ),
        Topic(
            name="notifier.delivery",
            owner="notifier",
            consumers=(),
            description="Outcome of each email the notifier sends.",
            events=(notifier.NotificationSent, notifier.NotificationFailed),
        ),
    )
}

SUPERSEDED: tuple[type[Event], ...] = (
    # v1 carried their single-use tokens in clear; v2 seals them (contracts.secrets). Retire with `git rm` of
    # their schemas once no v1 producer runs and no v1 record is left to consume (README, "Bumping a version").
    accounts.AccountRegisteredV1,
    accounts.VerificationLinkRequestedV1,
    accounts.PasswordResetRequestedV1,
    accounts.MemberInvitedV1,
    accounts.EmailChangeRequestedV1,
    accounts.EmailChangedV1,
    enrollment.ParticipationLinkIssuedV1,
)
"""Older versions of events still decodable (and whose committed schemas are still checked)."""


def _registry() -> dict[tuple[str, int], type[Event]]:
    registry: dict[tuple[str, int], type[Event]] = {}
    for model in (*(event for topic in TOPICS.values() for event in topic.events), *SUPERSEDED):
        key = (model.event_name(), model.version)
        if key in registry:
            raise ContractError(f"{key[0]} v{key[1]} is registered twice")
        registry[key] = model
    return registry


EVENT_TYPES: dict[tuple[str, int], type[Event]] = _registry()


def topic_for(event_type: type[Event]) -> Topic:
    try:
        return TOPICS[event_type.topic]
    except (AttributeError, KeyError):
        raise ContractError(f"{event_type.__name__} belongs to no known topic") from None


def topics_written_by(service: str) -> list[str]:
    """The topics `service` publishes to: its own, and the dead-letter topics of those it consumes."""
    owned = [topic.name for topic in TOPICS.values() if topic.owner == service]
    return owned + [topic.dlq for topic in TOPICS.values() if service in topic.consumers]


def topics_read_by(service: str) -> list[str]:
    return [topic.name for topic in TOPICS.values() if service in topic.consumers]
